"""The Zipformer block (one layer) and the stacks built from it.

Layer order (paper, Fig. 2): attention weights computed once -> FF1 (3/4 ff_dim) -> non-linear
attention (first head) -> self-attention 1 -> conv 1 -> FF2 (ff_dim) -> mid bypass ->
self-attention 2 -> conv 2 -> FF3 (5/4 ff_dim) -> BiasNorm -> final bypass. Each bypass is
``x_in + scale * (x_out - x_in)`` with a learned per-channel ``scale`` clamped to ``[floor, 1]``
(final bypass floor annealed 0.9 -> 0.2 over the batch count). In training, whole layers are
skipped per sequence (rate annealed 0.5 -> 0.035 * sqrt(ds)) and each sub-module's contribution
is dropped per sequence with a small annealed rate.

Stacks: :class:`ZipformerStack` runs layers at one frame rate; :class:`DownsampledStack`
downsamples by a learned softmax-weighted average over each group of ``ds`` frames, runs the stack,
repeats frames back up and mixes with its input through a bypass.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gmot.models.zipformer.attention import (
    CompactRelPositionalEncoding,
    NonlinAttention,
    RelPositionAttentionWeights,
    SelfAttention,
)
from gmot.models.zipformer.scaling import (
    Balancer,
    BiasNorm,
    ScheduledFloat,
    SwooshL,
    SwooshR,
    Whiten,
    scaled_linear,
)

__all__ = [
    "FeedForward",
    "ConvolutionModule",
    "Bypass",
    "ZipformerLayer",
    "ZipformerStack",
    "Downsample",
    "Upsample",
    "DownsampledStack",
    "padding_mask",
    "chunk_attention_mask",
]


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on PADDED frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


def _sequence_keep(x: Tensor, rate: float, training: bool) -> Tensor | None:
    """(B, 1, 1) 0/1 mask dropping whole sequences with probability ``rate`` (None: keep all)."""
    if not training or rate <= 0.0:
        return None
    return (torch.rand(x.shape[0], 1, 1, device=x.device) >= rate).to(x.dtype)


class FeedForward(nn.Module):
    """Linear -> SwooshL -> dropout -> Linear on (B, T, C)."""

    def __init__(self, embed_dim: int, hidden_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.in_proj = nn.Linear(embed_dim, hidden_dim)
        self.balancer = Balancer(hidden_dim, min_abs=0.75, max_abs=5.0)
        self.activation = SwooshL()
        self.dropout = nn.Dropout(dropout)
        self.out_proj = scaled_linear(hidden_dim, embed_dim, scale=0.1)
        self.whiten = Whiten(whitening_limit=10.0)

    def forward(self, x: Tensor) -> Tensor:
        y = self.activation(self.balancer(self.in_proj(x)))
        return self.whiten(self.out_proj(self.dropout(y)))


class ConvolutionModule(nn.Module):
    """GLU-gated depthwise convolution module on (B, T, C); padded frames are zeroed first.

    With ``causal=True`` the depthwise convolution sees only the current and the previous
    ``kernel_size - 1`` frames (left padding; same parameters as the centred version), and
    :meth:`streaming_forward` carries those frames from chunk to chunk.
    """

    def __init__(self, channels: int, kernel_size: int, causal: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.causal = causal
        self.kernel_size = kernel_size
        self.in_proj = nn.Linear(channels, 2 * channels)
        self.balancer1 = Balancer(2 * channels, min_positive=0.05, max_positive=1.0)
        self.depthwise = nn.Conv1d(
            channels,
            channels,
            kernel_size,
            padding=0 if causal else kernel_size // 2,
            groups=channels,
        )
        self.balancer2 = Balancer(channels, min_positive=0.1, max_positive=1.0, min_abs=0.2)
        self.activation = SwooshR()
        self.out_proj = scaled_linear(channels, channels, scale=0.05)
        self.whiten = Whiten(whitening_limit=10.0)

    def _gated(self, x: Tensor, pad_mask: Tensor | None) -> Tensor:
        a, g = self.balancer1(self.in_proj(x)).chunk(2, dim=-1)
        y = a * torch.sigmoid(g)
        if pad_mask is not None:
            y = y.masked_fill(pad_mask[..., None], 0.0)
        return y

    def _output(self, y: Tensor) -> Tensor:
        y = self.depthwise(y.transpose(1, 2)).transpose(1, 2)
        y = self.activation(self.balancer2(y))
        return self.whiten(self.out_proj(y))

    def forward(self, x: Tensor, pad_mask: Tensor | None) -> Tensor:
        """x (B, T, C); pad_mask (B, T) True = padded. Returns (B, T, C)."""
        y = self._gated(x, pad_mask)
        if self.causal:
            y = nn.functional.pad(y, (0, 0, self.kernel_size - 1, 0))
        return self._output(y)

    def streaming_forward(
        self, x: Tensor, pad_mask: Tensor, cache: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One chunk (causal only): x (B, T, C), pad_mask (B, T), cache (B, kernel_size - 1, C)
        holding the previous frames' gated values. Returns (B, T, C) and the new cache."""
        y = torch.cat([cache, self._gated(x, pad_mask)], dim=1)
        return self._output(y), y[:, y.shape[1] - cache.shape[1] :]


class Bypass(nn.Module):
    """``x_in + scale * (x_out - x_in)`` with per-channel ``scale`` clamped to ``[floor, max]``.

    In training, with ``skip_rate`` per sequence the output is ``x_in`` (the layer is skipped).
    The clamp applies in eval too, with the schedule's current value (its final value, e.g. 0.2,
    when :func:`set_batch_count` was never called).
    """

    def __init__(
        self,
        embed_dim: int,
        floor: float | ScheduledFloat = 0.0,
        max_scale: float = 1.0,
        skip_rate: float | ScheduledFloat = 0.0,
    ) -> None:
        super().__init__()
        self.bypass_scale = nn.Parameter(torch.full((embed_dim,), 0.5))
        self.floor, self.max_scale, self.skip_rate = floor, max_scale, skip_rate

    def forward(self, x_in: Tensor, x_out: Tensor) -> Tensor:
        scale = self.bypass_scale.clamp(float(self.floor), self.max_scale)
        if self.training:
            keep = _sequence_keep(x_in, float(self.skip_rate), True)
            if keep is not None:
                scale = scale * keep
        return x_in + scale * (x_out - x_in)


class ZipformerLayer(nn.Module):
    """One Zipformer block on (B, T, C) with shared attention weights.

    Args:
        embed_dim: C. pos_dim: positional feature dim. num_heads: H.
        query_head_dim, pos_head_dim, value_head_dim: per-head dims (32, 4, 12 published).
        feedforward_dim: FF2 hidden size (FF1 = 3/4, FF3 = 5/4 of it).
        cnn_module_kernel: depthwise kernel (odd).
        layer_skip_rate: per-sequence rate of skipping the whole layer (training only).
        causal: causal convolutions (streaming); attention causality comes from the mask.
    """

    #: Streaming cache tensors per layer, in this order (see :meth:`streaming_forward`).
    CACHE_NAMES = ("key", "nonlin_attn", "val1", "val2", "conv1", "conv2")

    def __init__(
        self,
        embed_dim: int,
        pos_dim: int,
        num_heads: int,
        query_head_dim: int,
        pos_head_dim: int,
        value_head_dim: int,
        feedforward_dim: int,
        cnn_module_kernel: int,
        dropout: float = 0.1,
        layer_skip_rate: float | ScheduledFloat = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        c = embed_dim
        self.embed_dim = c
        self.attn_weights = RelPositionAttentionWeights(
            c, pos_dim, num_heads, query_head_dim, pos_head_dim
        )
        self.self_attn1 = SelfAttention(c, num_heads, value_head_dim)
        self.self_attn2 = SelfAttention(c, num_heads, value_head_dim)
        self.feed_forward1 = FeedForward(c, (feedforward_dim * 3) // 4, dropout)
        self.feed_forward2 = FeedForward(c, feedforward_dim, dropout)
        self.feed_forward3 = FeedForward(c, (feedforward_dim * 5) // 4, dropout)
        self.nonlin_attention = NonlinAttention(c, 3 * c // 4)
        self.conv1 = ConvolutionModule(c, cnn_module_kernel, causal)
        self.conv2 = ConvolutionModule(c, cnn_module_kernel, causal)
        self.norm = BiasNorm(c)
        self.bypass_mid = Bypass(c, floor=0.0)
        self.bypass = Bypass(
            c,
            floor=ScheduledFloat((0.0, 0.9), (20000.0, 0.2), default=0.2),
            skip_rate=layer_skip_rate,
        )
        self.module_drop_rate = ScheduledFloat((0.0, 0.1), (4000.0, 0.0), default=0.0)
        self.balancer = Balancer(c, min_positive=0.45, max_positive=0.55, min_abs=0.2, max_abs=4.0)
        self.whiten = Whiten(whitening_limit=5.0, grad_scale=0.01)

    def _add(self, x: Tensor, y: Tensor) -> Tensor:
        keep = _sequence_keep(x, float(self.module_drop_rate), self.training)
        return x + (y if keep is None else y * keep)

    def cache_shapes(self, batch_size: int, left: int) -> list[tuple[int, ...]]:
        """Shapes of the streaming cache (order :attr:`CACHE_NAMES`) for ``left`` frames."""
        aw, sa = self.attn_weights, self.self_attn1
        k = self.conv1.kernel_size - 1
        return [
            (batch_size, left, aw.num_heads * aw.query_head_dim),
            (batch_size, left, self.nonlin_attention.hidden_dim),
            (batch_size, left, sa.num_heads * sa.value_head_dim),
            (batch_size, left, sa.num_heads * sa.value_head_dim),
            (batch_size, k, self.embed_dim),
            (batch_size, k, self.embed_dim),
        ]

    def forward(
        self,
        x: Tensor,
        pos_emb: Tensor,
        pad_mask: Tensor | None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, C); pos_emb (2T-1, pos_dim); pad_mask (B, T) True = padded; attn_mask (T, T)
        True = not visible (chunk mask, None = full attention). Returns (B, T, C)."""
        x_in = x
        w = self.attn_weights(x, pos_emb, pad_mask, attn_mask)
        x = self._add(x, self.feed_forward1(x))
        x = self._add(x, self.nonlin_attention(x, w))
        x = self._add(x, self.self_attn1(x, w))
        x = self._add(x, self.conv1(x, pad_mask))
        x = self._add(x, self.feed_forward2(x))
        x = self.bypass_mid(x_in, x)
        x = self._add(x, self.self_attn2(x, w))
        x = self._add(x, self.conv2(x, pad_mask))
        x = self._add(x, self.feed_forward3(x))
        x = self.norm(self.balancer(x))
        return self.whiten(self.bypass(x_in, x))

    def streaming_forward(
        self, x: Tensor, pos_emb: Tensor, key_mask: Tensor, pad_mask: Tensor, cache: list[Tensor]
    ) -> tuple[Tensor, list[Tensor]]:
        """One chunk in eval mode: x (B, T, C) against L cached frames plus itself.

        Args:
            pos_emb: (L + 2T - 1, pos_dim); key_mask (B, L + T) True = key not visible;
            pad_mask (B, T) True = padded frame of the chunk; cache: six tensors, shapes
            :meth:`cache_shapes`. Returns (B, T, C) and the six new cache tensors.
        """
        key, nonlin, val1, val2, conv1, conv2 = cache
        x_in = x
        w, key = self.attn_weights.streaming_forward(x, pos_emb, key_mask, key)
        x = x + self.feed_forward1(x)
        y, nonlin = self.nonlin_attention.streaming_forward(x, w, nonlin)
        x = x + y
        y, val1 = self.self_attn1.streaming_forward(x, w, val1)
        x = x + y
        y, conv1 = self.conv1.streaming_forward(x, pad_mask, conv1)
        x = x + y
        x = x + self.feed_forward2(x)
        x = self.bypass_mid(x_in, x)
        y, val2 = self.self_attn2.streaming_forward(x, w, val2)
        x = x + y
        y, conv2 = self.conv2.streaming_forward(x, pad_mask, conv2)
        x = x + y
        x = x + self.feed_forward3(x)
        x = self.norm(self.balancer(x))
        return self.whiten(self.bypass(x_in, x)), [key, nonlin, val1, val2, conv1, conv2]


class ZipformerStack(nn.Module):
    """``num_layers`` Zipformer layers at one frame rate, sharing one positional encoding."""

    def __init__(self, num_layers: int, pos_dim: int, **layer_kwargs) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.pos_enc = CompactRelPositionalEncoding(pos_dim)
        self.layers = nn.ModuleList(
            [ZipformerLayer(pos_dim=pos_dim, **layer_kwargs) for _ in range(num_layers)]
        )

    def forward(
        self, x: Tensor, lengths: Tensor, chunk_size: int = -1, left_context: int = -1
    ) -> Tensor:
        """x (B, T, C), lengths (B,) -> (B, T, C).

        ``chunk_size`` / ``left_context`` (frames at this stack's rate, -1 = unlimited) restrict
        the attention to the query's chunk and ``left_context`` frames before it.
        """
        pos_emb = self.pos_enc(x.shape[1], x.device, x.dtype)
        mask = padding_mask(lengths, x.shape[1])
        attn_mask = chunk_attention_mask(x.shape[1], chunk_size, left_context, x.device)
        for layer in self.layers:
            x = layer(x, pos_emb, mask, attn_mask)
        return x

    def cache_shapes(self, batch_size: int, left: int) -> list[tuple[int, ...]]:
        """Shapes of this stack's streaming states: six per layer (ZipformerLayer.CACHE_NAMES)."""
        return [s for layer in self.layers for s in layer.cache_shapes(batch_size, left)]

    def streaming_forward(
        self, x: Tensor, lengths: Tensor, processed: Tensor, states: list[Tensor]
    ) -> tuple[Tensor, list[Tensor]]:
        """One chunk in eval mode, at this stack's frame rate.

        Args:
            x: (B, T, C) the chunk. lengths: (B,) valid frames of the chunk (0..T).
            processed: (B,) frames of each stream encoded before this chunk.
            states: :meth:`cache_shapes` tensors; their L (the left context) is the number of
                cached frames, of which the last ``min(L, processed)`` are real.
        Returns: (B, T, C) and the new states.
        """
        t = x.shape[1]
        left = states[0].shape[1]
        pos_emb = self.pos_enc(t, x.device, x.dtype, key_len=left + t)
        slot = torch.arange(left, device=x.device)
        before_start = slot[None, :] < (left - processed)[:, None]
        pad = padding_mask(lengths, t)
        key_mask = torch.cat([before_start, pad], dim=1)
        new_states: list[Tensor] = []
        n = len(ZipformerLayer.CACHE_NAMES)
        for i, layer in enumerate(self.layers):
            x, cache = layer.streaming_forward(x, pos_emb, key_mask, pad, states[n * i : n * i + n])
            new_states.extend(cache)
        return x, new_states


def chunk_attention_mask(
    t: int, chunk_size: int, left_context: int, device: torch.device | None = None
) -> Tensor | None:
    """(T, T) bool, True where query i (row) may not see key j: keys after i's chunk, and keys
    more than ``left_context`` frames before the chunk's first frame. Chunks start at frame 0.
    None when ``chunk_size <= 0`` (full attention); ``left_context < 0`` means unlimited."""
    if chunk_size <= 0:
        return None
    idx = torch.arange(t, device=device)
    start = torch.div(idx, chunk_size, rounding_mode="floor") * chunk_size
    masked = idx[None, :] >= (start + chunk_size)[:, None]
    if left_context >= 0:
        masked = masked | (idx[None, :] < (start - left_context)[:, None])
    return masked


def _replicate_last_valid(x: Tensor, lengths: Tensor, new_len: int) -> Tensor:
    """(B, T, C) -> (B, new_len, C) where frame t is x[min(t, len - 1)] per sequence."""
    t = torch.arange(new_len, device=x.device)
    idx = torch.minimum(t[None, :], (lengths - 1).clamp_min(0)[:, None])  # (B, new_len)
    idx = idx.clamp_max(x.shape[1] - 1)
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[2]))


class Downsample(nn.Module):
    """Learned softmax-weighted average over groups of ``factor`` frames.

    Frames past each sequence's length are replaced by its last valid frame first, so a padded
    sequence downsamples exactly as it would alone. Output length ``ceil(T / factor)``.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.bias = nn.Parameter(torch.zeros(factor))

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, C), lengths (B,) -> (B, ceil(T/f), C), ceil(lengths/f)."""
        f = self.factor
        b, t, c = x.shape
        t_out = (t + f - 1) // f
        x = _replicate_last_valid(x, lengths, t_out * f).reshape(b, t_out, f, c)
        w = self.bias.softmax(dim=0).to(x.dtype)
        out_lens = torch.div(lengths + f - 1, f, rounding_mode="floor")
        return torch.einsum("btfc,f->btc", x, w), out_lens


class Upsample(nn.Module):
    """Repeat each frame ``factor`` times and cut to ``length`` frames."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor, length: int) -> Tensor:
        return x.repeat_interleave(self.factor, dim=1)[:, :length]


class DownsampledStack(nn.Module):
    """Downsample -> :class:`ZipformerStack` -> upsample -> bypass with the stack input."""

    def __init__(self, stack: ZipformerStack, embed_dim: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.downsample = Downsample(factor)
        self.encoder = stack
        self.upsample = Upsample(factor)
        self.out_combiner = Bypass(embed_dim, floor=0.0)

    def forward(
        self, x: Tensor, lengths: Tensor, chunk_size: int = -1, left_context: int = -1
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, T, C), lengths (B,) -> (out (B, T, C), inner (B, T_k, C), inner lengths (B,)).

        ``chunk_size`` / ``left_context`` are frames at the input rate (multiples of the factor,
        or -1); the inner stack gets them divided by the factor.
        """
        xd, lens_d = self.downsample(x, lengths)
        inner = self.encoder(
            xd, lens_d, _div(chunk_size, self.factor), _div(left_context, self.factor)
        )
        up = self.upsample(inner, x.shape[1])
        return self.out_combiner(x, up), inner, lens_d

    def streaming_forward(
        self, x: Tensor, lengths: Tensor, processed: Tensor, states: list[Tensor]
    ) -> tuple[Tensor, Tensor, Tensor, list[Tensor]]:
        """One chunk: x (B, T, C) at the input rate (T a multiple of the factor, the chunk
        starting on a multiple of it), lengths/processed (B,) at the input rate. Returns out
        (B, T, C), inner (B, T / factor, C), inner lengths (B,) and the new states."""
        xd, lens_d = self.downsample(x, lengths)
        proc = torch.div(processed, self.factor, rounding_mode="floor")
        inner, new_states = self.encoder.streaming_forward(xd, lens_d, proc, states)
        up = self.upsample(inner, x.shape[1])
        return self.out_combiner(x, up), inner, lens_d, new_states


def _div(frames: int, factor: int) -> int:
    """Frames at a rate ``factor`` times lower (-1 stays -1)."""
    return frames if frames < 0 else frames // factor


def default_layer_skip_rate(factor: int) -> ScheduledFloat:
    """Layer-skip schedule: 0.5 at batch 0 annealed to 0.035 * sqrt(factor) at 4000 batches."""
    return ScheduledFloat((0.0, 0.5), (4000.0, 0.035 * math.sqrt(factor)), default=0.0)
