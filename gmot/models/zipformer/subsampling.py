"""Conv2d subsampling front end of the Zipformer: 100 Hz fbank -> 50 Hz frames.

Three 3x3 convolutions (1->8, 8->32 with stride 2, 32->128 with stride (1, 2) over
(time, frequency)), each followed by SwooshR, then a ConvNeXt-style block (7x7 depthwise conv,
1x1 expansion to 384 channels with SwooshL, 1x1 projection, residual), a linear layer to
``out_dim`` and a BiasNorm. No padding is used along time in the first three convolutions, so the
output has ``(T - 7) // 2`` frames and every valid output frame depends only on valid input frames;
frames past each utterance's valid length are zeroed before the ConvNeXt block so that padding
never leaks into valid frames.

Streaming (:meth:`Conv2dSubsampling.streaming_forward`): output frame t needs input frames
``2t .. 2t + 8`` for the three convolutions and the ConvNeXt block's 7-frame kernel adds 3 frames
on each side, so a chunk of S output frames starting at output frame s needs input frames
``2s .. 2s + 2S + 12``: ``2S`` new frames plus :data:`RIGHT_PADDING` = 13 frames of look-ahead
(130 ms), with the ConvNeXt block's 3 left frames carried as a cache.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmot.models.zipformer.config import EMBED_ACTIVATIONS
from gmot.models.zipformer.scaling import Balancer, BiasNorm, SwooshL, SwooshR, Whiten

__all__ = ["Conv2dSubsampling", "subsampled_lengths", "RIGHT_PADDING"]

#: Input frames (100 Hz) a streaming chunk needs beyond its ``2 * S`` own frames: 7 for the
#: convolutions' receptive field, 2 * 3 for the ConvNeXt kernel's right half.
RIGHT_PADDING = 13


def subsampled_lengths(x_lens: Tensor) -> Tensor:
    """Output lengths of :class:`Conv2dSubsampling`: ``(x_lens - 7) // 2`` (int64, (B,))."""
    return torch.div(x_lens - 7, 2, rounding_mode="floor")


def _time_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class ConvNeXt(nn.Module):
    """ConvNeXt-style residual block on (B, C, T, F) feature maps."""

    def __init__(
        self, channels: int = 128, hidden: int = 384, kernel: int = 7, activation: str = "swoosh"
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            channels, channels, kernel, padding=kernel // 2, groups=channels, bias=True
        )
        self.pointwise1 = nn.Conv2d(channels, hidden, 1)
        self.activation = SwooshL() if activation == "swoosh" else nn.ReLU()
        self.hidden_balancer = Balancer(hidden, channel_dim=1, min_positive=0.3, max_positive=1.0)
        self.pointwise2 = nn.Conv2d(hidden, channels, 1)
        with torch.no_grad():
            self.pointwise2.weight.mul_(0.01)

    def forward(self, x: Tensor) -> Tensor:
        # Channels-last makes the 7x7 depthwise convolution (forward + backward) about 3.5x
        # faster on CPU (oneDNN); values are unchanged (bench/bench_conv_embed.py).
        x = x.contiguous(memory_format=torch.channels_last)
        y = self.pointwise1(self.depthwise(x))
        y = self.activation(self.hidden_balancer(y))
        return x + self.pointwise2(y)

    @property
    def time_pad(self) -> int:
        """Frames the depthwise kernel reaches on each side along time (3)."""
        return self.depthwise.padding[0]

    def streaming_forward(self, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, C, T + p, F): T chunk frames then p = :attr:`time_pad` look-ahead frames;
        cache (B, C, p, F): the p frames before the chunk. Returns (B, C, T, F) and the new
        cache (the last p frames of the chunk)."""
        p = self.time_pad
        full = torch.cat([cache, x], dim=2)
        dw = self.depthwise
        y = nn.functional.conv2d(
            full, dw.weight, dw.bias, padding=(0, dw.padding[1]), groups=dw.groups
        )
        t = y.shape[2]
        y = self.activation(self.hidden_balancer(self.pointwise1(y)))
        return full[:, :, p : p + t] + self.pointwise2(y), full[:, :, t : t + p]


class Conv2dSubsampling(nn.Module):
    """Subsample (B, T, F) fbank at 100 Hz to (B, (T - 7) // 2, out_dim) at 50 Hz.

    Args:
        in_features: number of fbank bins F (>= 9).
        out_dim: output channels (encoder_dim of the first stack).
        dropout: dropout on the output.
        channels: output channels of the three convolutions ((8, 32, 128) published; smaller
            only for tiny test models).
        convnext_hidden: hidden channels of the ConvNeXt block (384 published).
        activation: ``"swoosh"`` (SwooshR after the convolutions, SwooshL in the ConvNeXt
            block; published) or ``"relu"`` everywhere in the front end (cheaper on CPU: the
            front end's activations run on the largest tensors of a small model).
    """

    def __init__(
        self,
        in_features: int,
        out_dim: int,
        dropout: float = 0.1,
        channels: tuple[int, int, int] = (8, 32, 128),
        convnext_hidden: int = 384,
        activation: str = "swoosh",
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        if in_features < 9:
            raise ValueError(f"in_features must be >= 9, got {in_features}")
        if activation not in EMBED_ACTIVATIONS:
            raise ValueError(f"activation must be one of {EMBED_ACTIVATIONS}, got {activation!r}")
        self.in_features = in_features

        def act() -> nn.Module:
            return SwooshR() if activation == "swoosh" else nn.ReLU()

        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=(0, 1)),
            act(),
            nn.Conv2d(c1, c2, 3, stride=2),
            act(),
            nn.Conv2d(c2, c3, 3, stride=(1, 2)),
            act(),
        )
        self.convnext = ConvNeXt(c3, convnext_hidden, activation=activation)
        self.out_width = ((in_features - 1) // 2 - 1) // 2
        self.out = nn.Linear(self.out_width * c3, out_dim)
        self.out_whiten = Whiten(num_groups=1, whitening_limit=5.0)
        self.out_norm = BiasNorm(out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Args: x (B, T, F) float, x_lens (B,) int frames. Returns (B, T', D), lens (B,)."""
        if x.dim() != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"x must be (B, T, {self.in_features}), got {tuple(x.shape)}")
        if x.shape[1] < 9:
            raise ValueError(f"need at least 9 input frames, got T={x.shape[1]}")
        out_lens = subsampled_lengths(x_lens)
        y = self.conv(x.unsqueeze(1))  # (B, 128, T', F')
        mask = _time_mask(out_lens, y.shape[2])
        y = y * mask[:, None, :, None].to(y.dtype)
        y = self.convnext(y)
        return self._project(y), out_lens

    def _project(self, y: Tensor) -> Tensor:
        """(B, C, T, F') feature maps -> (B, T, out_dim)."""
        b, c, t, f = y.shape
        y = self.out(y.permute(0, 2, 1, 3).reshape(b, t, c * f))
        y = self.out_norm(self.out_whiten(y))
        return self.dropout(y)

    def cache_shape(self, batch_size: int) -> tuple[int, int, int, int]:
        """Shape of the streaming cache: (B, C3, 3, F') ConvNeXt input frames."""
        dw = self.convnext.depthwise
        return (batch_size, dw.in_channels, self.convnext.time_pad, self.out_width)

    def streaming_forward(
        self, x: Tensor, x_lens: Tensor, cache: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One chunk of S output frames (eval mode).

        Args:
            x: (B, 2S + RIGHT_PADDING, F) fbank frames at 100 Hz, starting at frame 2s.
            x_lens: (B,) valid frames of ``x`` (0 .. 2S + 13; fewer at the utterance end).
            cache: (B, C3, 3, F') from the previous chunk (zeros at the start).
        Returns:
            (B, S, out_dim), lens (B,) valid output frames ``clamp((x_lens - 7) // 2, 0, S)``,
            and the new cache. Output frame i equals frame s + i of :meth:`forward` on the
            whole utterance.
        """
        t_out = (x.shape[1] - RIGHT_PADDING) // 2
        conv_lens = subsampled_lengths(x_lens).clamp(min=0)
        y = self.conv(x.unsqueeze(1))  # (B, C3, S + 3, F')
        y = y * _time_mask(conv_lens, y.shape[2])[:, None, :, None].to(y.dtype)
        y, new_cache = self.convnext.streaming_forward(y, cache)
        return self._project(y[:, :, :t_out]), conv_lens.clamp(max=t_out), new_cache
