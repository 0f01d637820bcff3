"""The Zipformer encoder: Conv2d front end, six stacks at 50/25/12.5/6.25/12.5/25 Hz, 25 Hz output.

Between stacks the channel count is truncated or zero-padded to the next stack's
``encoder_dim``. The output takes each channel range from the latest stack that has it (so the
last stack supplies its first ``encoder_dim[-1]`` channels, an earlier wider stack the rest) and
is then downsampled x2 by a learned weighted average, giving ``max(encoder_dim)`` channels at
25 Hz with lengths ``((T - 7) // 2 + 1) // 2``.

Streaming (``ZipformerConfig.causal=True``, issue 23): causal block convolutions and chunk-wise
attention with limited left context. ``forward`` draws the chunk size and left context per call
in training (dynamic chunk training) and uses the first configured values in eval (simulated
streaming); :meth:`Zipformer.streaming_forward` encodes one chunk with carried states and gives
the same frames as the simulated-streaming ``forward`` (``gmot.models.zipformer.streaming``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gmot.models.zipformer.block import (
    Downsample,
    DownsampledStack,
    ZipformerLayer,
    ZipformerStack,
    default_layer_skip_rate,
)
from gmot.models.zipformer.config import ZipformerConfig, get_config
from gmot.models.zipformer.subsampling import RIGHT_PADDING, Conv2dSubsampling

__all__ = [
    "Zipformer",
    "build_encoder",
    "normalize_utterances",
    "output_lengths",
    "pool_bins",
    "pool_frames",
]


def output_lengths(
    x_lens: Tensor, time_pool: int = 1, output_downsampling_factor: int = 2
) -> Tensor:
    """Encoder output lengths for input lengths (100 Hz frames).

    The published model (``time_pool`` 1, output factor 2): ``((x - 7) // 2 + 1) // 2``; in
    general ``ceil(((x // time_pool - 7) // 2) / output_downsampling_factor)``.
    """
    t = torch.div(x_lens, time_pool, rounding_mode="floor")
    t = torch.div(t - 7, 2, rounding_mode="floor")
    f = output_downsampling_factor
    return torch.div(t + f - 1, f, rounding_mode="floor")


def _convert_channels(x: Tensor, dim: int) -> Tensor:
    """Truncate or zero-pad the last axis of (B, T, C) to ``dim``."""
    c = x.shape[-1]
    if dim < c:
        return x[..., :dim]
    if dim > c:
        return torch.nn.functional.pad(x, (0, dim - c))
    return x


def normalize_utterances(x: Tensor, x_lens: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-utterance, per-bin mean and variance normalisation over the valid frames.

    Args:
        x: (B, T, F) features; x_lens: (B,) valid frames (>= 1).
    Returns:
        (B, T, F): ``(x - mean) / sqrt(var + eps)`` on valid frames, 0 past each length.
    """
    dtype, x = x.dtype, x.float()  # float32 sums: a half-precision sum over T can overflow
    mask = (torch.arange(x.shape[1], device=x.device)[None, :] < x_lens[:, None]).to(x.dtype)
    mask = mask.unsqueeze(-1)  # (B, T, 1)
    n = x_lens.to(x.dtype).clamp_min(1)[:, None, None]
    mean = (x * mask).sum(dim=1, keepdim=True) / n
    var = (((x - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
    return ((x - mean) * torch.rsqrt(var + eps) * mask).to(dtype)


def pool_bins(x: Tensor, pool: int) -> Tensor:
    """Average each group of ``pool`` adjacent bins: (B, T, F) -> (B, T, F // pool).

    ``F`` must be a multiple of ``pool``; ``pool`` 1 returns ``x`` itself.
    """
    if pool == 1:
        return x
    f = x.shape[-1]
    if f % pool:
        raise ValueError(f"{f} bins cannot be pooled in groups of {pool}")
    # strided slices, not a reshape: traced for ONNX, a reshape would fix B and T
    out = x[..., 0::pool]
    for i in range(1, pool):
        out = out + x[..., i::pool]
    return out / pool


def pool_frames(x: Tensor, x_lens: Tensor, pool: int) -> tuple[Tensor, Tensor]:
    """Average each group of ``pool`` consecutive frames: (B, T, F) -> (B, T // pool, F).

    Lengths become ``x_lens // pool`` (a trailing partial group is dropped), so a valid output
    frame averages valid input frames only and a padded batch pools as each utterance would
    alone. ``pool`` 1 returns the inputs themselves.
    """
    if pool == 1:
        return x, x_lens
    t_out = x.shape[1] // pool
    # strided slices, not a reshape: traced for ONNX, a reshape would fix B and T
    out = x[:, 0 : t_out * pool : pool]
    for i in range(1, pool):
        out = out + x[:, i : t_out * pool : pool]
    return out / pool, torch.div(x_lens, pool, rounding_mode="floor")


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
        if num_features % config.freq_pool:
            raise ValueError(
                f"freq_pool={config.freq_pool} does not divide the {num_features} fbank bins"
            )
        self.encoder_embed = Conv2dSubsampling(
            num_features // config.freq_pool,
            config.encoder_dim[0],
            config.dropout,
            channels=config.embed_channels,
            convnext_hidden=config.embed_convnext_hidden,
            activation=config.embed_activation,
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
                causal=config.causal,
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

    def chunk_params(self) -> tuple[int, int]:
        """(chunk size, left context) in 50 Hz frames for the next ``forward`` (-1 = unlimited).

        Non-causal: (-1, -1). Causal in training: one value of each drawn with torch's RNG from
        ``config.chunk_size`` / ``config.left_context_frames`` (so seeds make it deterministic);
        in eval: the first of each. A full-utterance chunk (-1) has no left-context limit.
        """
        cfg = self.config
        if not cfg.causal:
            return -1, -1
        if self.training:
            chunk = cfg.chunk_size[int(torch.randint(len(cfg.chunk_size), ()))]
            left = cfg.left_context_frames[int(torch.randint(len(cfg.left_context_frames), ()))]
        else:
            chunk, left = cfg.chunk_size[0], cfg.left_context_frames[0]
        return chunk, (-1 if chunk < 0 else left)

    def _combine(self, outputs: list[Tensor]) -> Tensor:
        """Stack outputs (B, T, encoder_dim[k]) -> (B, T, output_dim), latest stack first."""
        out = outputs[-1]
        for k in range(len(outputs) - 2, -1, -1):
            if outputs[k].shape[-1] > out.shape[-1]:
                out = torch.cat([out, outputs[k][..., out.shape[-1] :]], dim=-1)
        return out

    def forward(
        self, x: Tensor, x_lens: Tensor, return_stack_outputs: bool = False
    ) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, list[tuple[Tensor, Tensor]]]:
        """Encode fbank features (causal encoders: chunk-wise, see :meth:`chunk_params`).

        Args:
            x: (B, T, num_features) float features at 100 Hz.
            x_lens: (B,) int valid frames per utterance (each in [9 * time_pool, T]).
            return_stack_outputs: also return each stack's output at its own frame rate.
        Returns:
            out (B, T', output_dim) at 25 Hz with T' = ((T - 7) // 2 + 1) // 2 (in general
            :func:`output_lengths`; 100 / (2 * time_pool * output_downsampling_factor) Hz),
            out_lens (B,), and when requested a list of six ``(stack_out (B, T_k,
            encoder_dim[k]), lens_k (B,))`` where T_k = ceil(((T // time_pool - 7) // 2) /
            downsampling_factor[k]) (stack 0 at 50 Hz for time_pool 1, ...).
        """
        if x.dim() != 3 or x.shape[-1] != self.num_features:
            raise ValueError(f"x must be (B, T, {self.num_features}), got {tuple(x.shape)}")
        if x_lens.shape != (x.shape[0],):
            raise ValueError(f"x_lens must be ({x.shape[0]},), got {tuple(x_lens.shape)}")
        x_lens = x_lens.to(device=x.device, dtype=torch.int64)
        tracing = torch.jit.is_tracing() or torch.jit.is_scripting()
        min_len = 9 * self.config.time_pool
        if not tracing and (int(x_lens.min()) < min_len or int(x_lens.max()) > x.shape[1]):
            raise ValueError(
                f"x_lens must lie in [{min_len}, T={x.shape[1]}], got min {int(x_lens.min())} "
                f"max {int(x_lens.max())}"
            )
        x = pool_bins(x, self.config.freq_pool)
        x, x_lens = pool_frames(x, x_lens, self.config.time_pool)
        if self.config.input_norm == "utterance":
            x = normalize_utterances(x, x_lens)
        chunk, left = self.chunk_params()
        h, lens = self.encoder_embed(x, x_lens)
        outputs: list[Tensor] = []
        stack_outputs: list[tuple[Tensor, Tensor]] = []
        for k, enc in enumerate(self.encoders):
            h = _convert_channels(h, self.config.encoder_dim[k])
            if isinstance(enc, DownsampledStack):
                h, inner, inner_lens = enc(h, lens, chunk, left)
            else:
                h = enc(h, lens, chunk, left)
                inner, inner_lens = h, lens
            h = self._feature_mask(h, k)
            outputs.append(h)
            stack_outputs.append((inner, inner_lens))
        out, out_lens = self.downsample_output(self._combine(outputs), lens)
        if return_stack_outputs:
            return out, out_lens, stack_outputs
        return out, out_lens

    # ----------------------------------------------------------------------------- streaming

    def _streaming_params(self) -> tuple[int, int]:
        """(S, L): chunk size and left context (50 Hz frames) used by streaming_forward."""
        cfg = self.config
        if not cfg.causal:
            raise ValueError(
                "streaming needs a causal encoder: this one was built with "
                "ZipformerConfig.causal=False (train with causal=True / --causal 1)"
            )
        chunk, left = cfg.chunk_size[0], cfg.left_context_frames[0]
        if chunk <= 0 or left <= 0:
            raise ValueError(
                "streaming needs a finite chunk and left context: the first values of "
                f"ZipformerConfig.chunk_size ({chunk}) and left_context_frames ({left}) must be "
                "positive"
            )
        return chunk, left

    @property
    def chunk_shift(self) -> int:
        """Fbank frames (100 Hz) one streaming chunk advances by: ``2 * chunk_size[0]``."""
        return 2 * self._streaming_params()[0]

    @property
    def right_padding(self) -> int:
        """Look-ahead fbank frames a chunk needs beyond its own ``chunk_shift`` frames (13)."""
        return RIGHT_PADDING

    @property
    def chunk_input_frames(self) -> int:
        """Fbank frames per :meth:`streaming_forward` call: ``chunk_shift + right_padding``."""
        return self.chunk_shift + RIGHT_PADDING

    def _state_shapes(self, batch_size: int) -> list[tuple[int, ...]]:
        _, left = self._streaming_params()
        shapes: list[tuple[int, ...]] = []
        for enc, ds in zip(self.encoders, self.config.downsampling_factor):
            stack = enc.encoder if isinstance(enc, DownsampledStack) else enc
            shapes.extend(stack.cache_shapes(batch_size, left // ds))
        shapes.append(self.encoder_embed.cache_shape(batch_size))
        shapes.append((batch_size,))
        return shapes

    def get_init_states(
        self, batch_size: int = 1, device: torch.device | str | None = None
    ) -> list[Tensor]:
        """Initial streaming states for ``batch_size`` streams (zeros; causal encoders only).

        Order: for every stack and layer the six caches of ``ZipformerLayer.CACHE_NAMES``
        (keys, non-linear-attention values, two value caches: (B, L_k, .) with L_k the left
        context at the stack's rate; two convolution caches (B, kernel - 1, C)), then the front
        end's cache (B, C3, 3, F') and the per-stream count of 50 Hz frames encoded (B,) int64.
        """
        if device is None:
            device = next(self.parameters()).device
        dtype = next(self.parameters()).dtype
        shapes = self._state_shapes(batch_size)
        states = [torch.zeros(s, device=device, dtype=dtype) for s in shapes[:-1]]
        return states + [torch.zeros(shapes[-1], device=device, dtype=torch.int64)]

    def _check_streaming_inputs(self, x: Tensor, x_lens: Tensor, states: list[Tensor]) -> None:
        n = self.chunk_input_frames
        if x.dim() != 3 or x.shape[1:] != (n, self.num_features):
            raise ValueError(
                f"x must be one chunk of shape (B, {n}, {self.num_features}) "
                f"(chunk_shift {self.chunk_shift} + right_padding {RIGHT_PADDING} fbank frames), "
                f"got {tuple(x.shape)}"
            )
        b = x.shape[0]
        if x_lens.shape != (b,):
            raise ValueError(f"x_lens must be ({b},), got {tuple(x_lens.shape)}")
        tracing = torch.jit.is_tracing() or torch.jit.is_scripting()  # ONNX export: no values
        if not tracing and (bool((x_lens < 0).any()) or bool((x_lens > n).any())):
            raise ValueError(f"x_lens must lie in [0, {n}], got {x_lens.tolist()}")
        shapes = self._state_shapes(b)
        if not isinstance(states, (list, tuple)) or len(states) != len(shapes):
            got = len(states) if isinstance(states, (list, tuple)) else type(states).__name__
            raise ValueError(
                f"states must be the list of {len(shapes)} tensors from get_init_states or the "
                f"previous streaming_forward of this model, got {got}"
            )
        for i, (st, shape) in enumerate(zip(states, shapes)):
            if tuple(st.shape) != shape:
                raise ValueError(
                    f"states[{i}] has shape {tuple(st.shape)}, expected {shape} for batch size "
                    f"{b}: states from another batch size or another model?"
                )

    def streaming_forward(
        self, x: Tensor, x_lens: Tensor, states: list[Tensor]
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Encode one chunk of B streams (eval mode, causal encoders).

        Args:
            x: (B, chunk_input_frames, num_features) fbank at 100 Hz: the chunk's
                :attr:`chunk_shift` frames followed by :attr:`right_padding` look-ahead frames
                (the next call starts ``chunk_shift`` frames later; zero-pad past the end).
            x_lens: (B,) valid frames of ``x`` (``chunk_input_frames`` until near the end).
            states: from :meth:`get_init_states` or the previous call.
        Returns:
            out (B, chunk_size[0] // 2, output_dim) at 25 Hz, out_lens (B,) valid frames of
            ``out``, and the new states. Concatenated over the chunks, the outputs equal the
            eval-mode ``forward`` on the whole utterances.
        """
        if self.training:
            raise RuntimeError("streaming_forward is for eval mode: call encoder.eval() first")
        self._check_streaming_inputs(x, x_lens, states)
        x_lens = x_lens.to(device=x.device, dtype=torch.int64)
        x = pool_bins(x, self.config.freq_pool)
        h, lens, embed_cache = self.encoder_embed.streaming_forward(x, x_lens, states[-2])
        processed = states[-1]
        outputs: list[Tensor] = []
        new_states: list[Tensor] = []
        i = 0
        for k, enc in enumerate(self.encoders):
            h = _convert_channels(h, self.config.encoder_dim[k])
            stack = enc.encoder if isinstance(enc, DownsampledStack) else enc
            n = len(stack.layers) * len(ZipformerLayer.CACHE_NAMES)
            if isinstance(enc, DownsampledStack):
                h, _, _, new = enc.streaming_forward(h, lens, processed, states[i : i + n])
            else:
                h, new = enc.streaming_forward(h, lens, processed, states[i : i + n])
            i += n
            outputs.append(h)
            new_states.extend(new)
        out, out_lens = self.downsample_output(self._combine(outputs), lens)
        return out, out_lens, new_states + [embed_cache, processed + lens]


def build_encoder(
    name_or_config: str | dict | ZipformerConfig, num_features: int = 80
) -> Zipformer:
    """Build a Zipformer encoder from "tiny" / "small" / "medium" / "large", a dict or a config."""
    return Zipformer(get_config(name_or_config), num_features=num_features)
