"""The Zipformer encoder: Conv2d front end, six stacks at 50/25/12.5/6.25/12.5/25 Hz, 25 Hz output.

Between stacks the channel count is truncated or zero-padded to the next stack's
``encoder_dim``. The output takes each channel range from the latest stack that has it (so the
last stack supplies its first ``encoder_dim[-1]`` channels, an earlier wider stack the rest) and
is then downsampled x2 by a learned weighted average, giving ``max(encoder_dim)`` channels at
25 Hz with lengths ``((T - 7) // 2 + 1) // 2``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmot.models.zipformer.block import (
    Downsample,
    DownsampledStack,
    ZipformerStack,
    default_layer_skip_rate,
)
from gmot.models.zipformer.config import ZipformerConfig, get_config
from gmot.models.zipformer.subsampling import Conv2dSubsampling

__all__ = ["Zipformer", "build_encoder", "output_lengths"]


def output_lengths(x_lens: Tensor) -> Tensor:
    """Encoder output lengths for input lengths (100 Hz frames): ``((x - 7) // 2 + 1) // 2``."""
    return torch.div(torch.div(x_lens - 7, 2, rounding_mode="floor") + 1, 2, rounding_mode="floor")


def _convert_channels(x: Tensor, dim: int) -> Tensor:
    """Truncate or zero-pad the last axis of (B, T, C) to ``dim``."""
    c = x.shape[-1]
    if dim < c:
        return x[..., :dim]
    if dim > c:
        return torch.nn.functional.pad(x, (0, dim - c))
    return x


class Zipformer(nn.Module):
    """Zipformer encoder (front end included).

    Args:
        config: :class:`ZipformerConfig`.
        num_features: fbank bins of the input (80).
    Attributes:
        output_dim: ``max(config.encoder_dim)``.
    """

    def __init__(self, config: ZipformerConfig, num_features: int = 80) -> None:
        super().__init__()
        self.config = config
        self.num_features = num_features
        self.output_dim = max(config.encoder_dim)
        self.encoder_embed = Conv2dSubsampling(
            num_features,
            config.encoder_dim[0],
            config.dropout,
            channels=config.embed_channels,
            convnext_hidden=config.embed_convnext_hidden,
        )
        stacks = []
        for i, ds in enumerate(config.downsampling_factor):
            stack = ZipformerStack(
                config.num_layers[i],
                config.pos_dim,
                embed_dim=config.encoder_dim[i],
                num_heads=config.num_heads[i],
                query_head_dim=config.query_head_dim,
                pos_head_dim=config.pos_head_dim,
                value_head_dim=config.value_head_dim,
                feedforward_dim=config.feedforward_dim[i],
                cnn_module_kernel=config.cnn_module_kernel[i],
                dropout=config.dropout,
                layer_skip_rate=default_layer_skip_rate(ds),
            )
            stacks.append(stack if ds == 1 else DownsampledStack(stack, config.encoder_dim[i], ds))
        self.encoders = nn.ModuleList(stacks)
        self.downsample_output = Downsample(config.output_downsampling_factor)

    def _feature_mask(self, x: Tensor, k: int) -> Tensor:
        """Zero channels >= unmasked_dim[k] for a random share of sequences (training only)."""
        unmasked = self.config.encoder_unmasked_dim[k]
        if not self.training or unmasked >= x.shape[-1]:
            return x
        drop = torch.rand(x.shape[0], 1, 1, device=x.device) < self.config.feature_mask_prob
        chan = torch.arange(x.shape[-1], device=x.device) >= unmasked
        return x * (~(drop & chan)).to(x.dtype)

    def forward(
        self, x: Tensor, x_lens: Tensor, return_stack_outputs: bool = False
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
        """Encode fbank features.

        Args:
            x: (B, T, num_features) float features at 100 Hz.
            x_lens: (B,) int valid frames per utterance (each in [9, T]).
            return_stack_outputs: also return each stack's output at its own frame rate.
        Returns:
            out (B, T', output_dim) at 25 Hz with T' = ((T - 7) // 2 + 1) // 2, out_lens (B,), and
            when requested a list of six ``(stack_out (B, T_k, encoder_dim[k]), lens_k (B,))``
            where T_k = ceil(((T - 7) // 2) / downsampling_factor[k]) (stack 0 at 50 Hz, ...).
        """
        if x.dim() != 3 or x.shape[-1] != self.num_features:
            raise ValueError(f"x must be (B, T, {self.num_features}), got {tuple(x.shape)}")
        if x_lens.shape != (x.shape[0],):
            raise ValueError(f"x_lens must be ({x.shape[0]},), got {tuple(x_lens.shape)}")
        x_lens = x_lens.to(device=x.device, dtype=torch.int64)
        tracing = torch.jit.is_tracing() or torch.jit.is_scripting()
        if not tracing and (int(x_lens.min()) < 9 or int(x_lens.max()) > x.shape[1]):
            raise ValueError(
                f"x_lens must lie in [9, T={x.shape[1]}], got min {int(x_lens.min())} "
                f"max {int(x_lens.max())}"
            )
        h, lens = self.encoder_embed(x, x_lens)
        outputs: list[Tensor] = []
        stack_outputs: list[tuple[Tensor, Tensor]] = []
        for k, enc in enumerate(self.encoders):
            h = _convert_channels(h, self.config.encoder_dim[k])
            if isinstance(enc, DownsampledStack):
                h, inner, inner_lens = enc(h, lens)
            else:
                h = enc(h, lens)
                inner, inner_lens = h, lens
            h = self._feature_mask(h, k)
            outputs.append(h)
            stack_outputs.append((inner, inner_lens))
        out = outputs[-1]
        for k in range(len(outputs) - 2, -1, -1):
            if outputs[k].shape[-1] > out.shape[-1]:
                out = torch.cat([out, outputs[k][..., out.shape[-1] :]], dim=-1)
        out, out_lens = self.downsample_output(out, lens)
        if return_stack_outputs:
            return out, out_lens, stack_outputs
        return out, out_lens


def build_encoder(
    name_or_config: str | dict | ZipformerConfig, num_features: int = 80
) -> Zipformer:
    """Build a Zipformer encoder from "tiny" / "small" / "medium" / "large", a dict or a config."""
    return Zipformer(get_config(name_or_config), num_features=num_features)
