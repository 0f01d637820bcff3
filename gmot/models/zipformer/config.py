"""Zipformer configurations: the published small / medium / large and a tiny one for tests.

Per-stack values follow icefall's published recipes (table in docs/zipformer.md).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ZipformerConfig", "NAMED_CONFIGS", "get_config", "int_tuple", "EMBED_ACTIVATIONS"]


def int_tuple(values: Any, name: str) -> tuple[int, ...]:
    """A tuple of ints from a comma string, an int or a sequence (at least one value)."""
    if isinstance(values, str):
        try:
            values = [int(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"{name} must be comma-separated integers, got {values!r}") from None
    if isinstance(values, int):
        values = [values]
    vals = tuple(int(v) for v in values)
    if not vals:
        raise ValueError(f"{name} needs at least one value")
    return vals


def _tuple6(values: Any, name: str) -> tuple[int, ...]:
    if isinstance(values, str):
        values = [int(v) for v in values.split(",")]
    if isinstance(values, int):
        values = [values]
    vals = tuple(int(v) for v in values)
    if len(vals) == 1:
        vals = vals * 6
    return vals


@dataclass
class ZipformerConfig:
    """Hyper-parameters of a Zipformer encoder (per-stack values are tuples, one per stack).

    Comma strings ("2,2,3,4,3,2") and single ints (broadcast to every stack) are accepted.

    Streaming (issue 23): ``causal=True`` makes the block convolutions causal and the attention
    chunk-wise. ``chunk_size`` and ``left_context_frames`` are frame counts at the 50 Hz embedding
    rate (-1 = the whole utterance / unlimited left context); each positive value must be a
    multiple of every stack's downsampling factor and of ``output_downsampling_factor``. In training
    one value of each is drawn per forward (dynamic chunk training), in eval the first is used.
    Non-causal configs must keep the defaults ``(-1,)``.

    ``input_norm``: ``"none"`` (the published model) or ``"utterance"``: each utterance's fbank
    is mean- and variance-normalised per bin over its valid frames before the front end (removes
    level, channel and spectral-tilt differences between voices; needs the whole utterance, so a
    causal encoder refuses it).

    ``freq_pool``: average each group of ``freq_pool`` adjacent fbank bins before the front end
    (2: 80 bins -> 40 bands). The front end's convolutions run over time x frequency, so on a
    small model they cost as much as all the encoder stacks together; halving the bins halves
    that cost (1: the published model, every bin used).

    ``time_pool``: average each group of ``time_pool`` consecutive fbank frames before the front
    end (2: 100 Hz -> 50 Hz; lengths ``x_lens // time_pool``). Every stack then runs on
    ``1 / time_pool`` of the frames, which divides the cost of the whole encoder, not only of
    the front end; with ``time_pool`` 2 set ``output_downsampling_factor`` 1 to keep 25 Hz
    output frames for the transducer and CTC. Non-causal encoders only (1: the published model).

    ``embed_activation``: the front end's activations, ``"swoosh"`` (SwooshR / SwooshL, the
    published model) or ``"relu"`` (cheaper per step on CPU, where a small model's front end
    dominates the step).
    """

    num_layers: tuple[int, ...] = (2, 2, 3, 4, 3, 2)
    encoder_dim: tuple[int, ...] = (192, 256, 384, 512, 384, 256)
    feedforward_dim: tuple[int, ...] = (512, 768, 1024, 1536, 1024, 768)
    encoder_unmasked_dim: tuple[int, ...] = (192, 192, 256, 256, 256, 192)
    num_heads: tuple[int, ...] = (4, 4, 4, 8, 4, 4)
    cnn_module_kernel: tuple[int, ...] = (31, 31, 15, 15, 15, 31)
    downsampling_factor: tuple[int, ...] = (1, 2, 4, 8, 4, 2)
    query_head_dim: int = 32
    pos_head_dim: int = 4
    value_head_dim: int = 12
    pos_dim: int = 48
    output_downsampling_factor: int = 2
    dropout: float = 0.1
    feature_mask_prob: float = 0.15
    embed_channels: tuple[int, ...] = (8, 32, 128)
    embed_convnext_hidden: int = 384
    embed_activation: str = "swoosh"
    causal: bool = False
    chunk_size: tuple[int, ...] = (-1,)
    left_context_frames: tuple[int, ...] = (-1,)
    input_norm: str = "none"
    freq_pool: int = 1
    time_pool: int = 1
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        per_stack = (
            "num_layers",
            "encoder_dim",
            "feedforward_dim",
            "encoder_unmasked_dim",
            "num_heads",
            "cnn_module_kernel",
            "downsampling_factor",
        )
        for name in per_stack:
            setattr(self, name, _tuple6(getattr(self, name), name))
        n = len(self.downsampling_factor)
        for name in per_stack:
            vals = getattr(self, name)
            if len(vals) == 1:
                vals = vals * n
                setattr(self, name, vals)
            if len(vals) != n:
                raise ValueError(f"{name} has {len(vals)} values, expected {n}: {vals}")
        for i, (u, d) in enumerate(zip(self.encoder_unmasked_dim, self.encoder_dim)):
            if u > d:
                raise ValueError(f"encoder_unmasked_dim[{i}]={u} exceeds encoder_dim[{i}]={d}")
        self.embed_channels = tuple(int(c) for c in self.embed_channels)
        if len(self.embed_channels) != 3:
            raise ValueError(f"embed_channels needs 3 values, got {self.embed_channels}")
        for i, k in enumerate(self.cnn_module_kernel):
            if k % 2 != 1:
                raise ValueError(f"cnn_module_kernel[{i}]={k} must be odd")
        if self.embed_activation not in EMBED_ACTIVATIONS:
            raise ValueError(
                f"embed_activation must be one of {EMBED_ACTIVATIONS}, "
                f"got {self.embed_activation!r}"
            )
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")
        self.freq_pool = int(self.freq_pool)
        if self.freq_pool < 1:
            raise ValueError(f"freq_pool must be >= 1, got {self.freq_pool}")
        self.time_pool = int(self.time_pool)
        if self.time_pool < 1:
            raise ValueError(f"time_pool must be >= 1, got {self.time_pool}")
        if self.output_downsampling_factor < 1:
            raise ValueError(
                f"output_downsampling_factor must be >= 1, got {self.output_downsampling_factor}"
            )
        self._check_streaming()
        if self.causal and self.input_norm == "utterance":
            raise ValueError(
                "input_norm='utterance' needs the whole utterance; a causal (streaming) encoder "
                "cannot use it (use input_norm='none')"
            )
        if self.causal and self.time_pool != 1:
            raise ValueError(
                f"time_pool={self.time_pool} is for non-causal encoders: streaming chunks are "
                "counted in 50 Hz frames of the unpooled input (use time_pool=1 with causal=True)"
            )

    def chunk_multiple(self) -> int:
        """The number every positive chunk size / left context must be a multiple of (50 Hz)."""
        m = 1
        for f in (*self.downsampling_factor, self.output_downsampling_factor):
            m = m * f // math.gcd(m, f)
        return m

    def _check_streaming(self) -> None:
        if not isinstance(self.causal, bool):
            if self.causal not in (0, 1):
                raise ValueError(f"causal must be a bool (or 0/1), got {self.causal!r}")
            self.causal = bool(self.causal)
        self.chunk_size = int_tuple(self.chunk_size, "chunk_size")
        self.left_context_frames = int_tuple(self.left_context_frames, "left_context_frames")
        if not self.causal:
            for name in ("chunk_size", "left_context_frames"):
                if getattr(self, name) != (-1,):
                    raise ValueError(
                        f"{name}={getattr(self, name)} needs causal=True (a non-causal encoder "
                        "always sees the whole utterance; leave it at (-1,))"
                    )
            return
        m = self.chunk_multiple()
        for name in ("chunk_size", "left_context_frames"):
            for v in getattr(self, name):
                if v == -1:
                    continue
                if v <= 0 or v % m:
                    raise ValueError(
                        f"{name} values must be -1 or positive multiples of {m} frames at 50 Hz "
                        f"(the downsampling factors {self.downsampling_factor} and the output "
                        f"factor {self.output_downsampling_factor}), got {v} in "
                        f"{getattr(self, name)}"
                    )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Allowed values of :attr:`ZipformerConfig.input_norm`.
INPUT_NORMS = ("none", "utterance")
#: Allowed values of :attr:`ZipformerConfig.embed_activation`.
EMBED_ACTIVATIONS = ("swoosh", "relu")

NAMED_CONFIGS: dict[str, dict] = {
    "small": dict(
        num_layers=(2, 2, 2, 2, 2, 2),
        encoder_dim=(192, 256, 256, 256, 256, 256),
        feedforward_dim=(512, 768, 768, 768, 768, 768),
        encoder_unmasked_dim=(192,) * 6,
    ),
    "medium": dict(
        num_layers=(2, 2, 3, 4, 3, 2),
        encoder_dim=(192, 256, 384, 512, 384, 256),
        feedforward_dim=(512, 768, 1024, 1536, 1024, 768),
        encoder_unmasked_dim=(192, 192, 256, 256, 256, 192),
    ),
    "large": dict(
        num_layers=(2, 2, 4, 5, 4, 2),
        encoder_dim=(192, 256, 512, 768, 512, 256),
        feedforward_dim=(512, 768, 1536, 2048, 1536, 768),
        encoder_unmasked_dim=(192, 192, 256, 320, 256, 192),
    ),
    # ~1.3M parameters (narrower front end): CPU tests and the demo recipe.
    "tiny": dict(
        num_layers=(1, 1, 1, 1, 1, 1),
        encoder_dim=(64, 96, 96, 128, 96, 96),
        feedforward_dim=(128, 192, 192, 256, 192, 192),
        encoder_unmasked_dim=(64, 64, 64, 64, 64, 64),
        num_heads=(2, 2, 2, 4, 2, 2),
        cnn_module_kernel=(15, 15, 7, 7, 7, 15),
        embed_channels=(8, 16, 32),
        embed_convnext_hidden=96,
    ),
}


def get_config(name_or_config: str | dict | ZipformerConfig) -> ZipformerConfig:
    """Resolve a name ("tiny", "small", "medium", "large"), a dict or a config to a config.

    A dict holds ZipformerConfig fields; with the key ``"base"`` (a name) it overrides only the
    given fields of that named config, e.g. ``{"base": "tiny", "input_norm": "utterance"}``.
    """
    if isinstance(name_or_config, ZipformerConfig):
        return name_or_config
    if isinstance(name_or_config, str):
        if name_or_config not in NAMED_CONFIGS:
            raise ValueError(
                f"unknown Zipformer config {name_or_config!r}; known: {sorted(NAMED_CONFIGS)}"
            )
        return ZipformerConfig(**NAMED_CONFIGS[name_or_config])
    if isinstance(name_or_config, dict):
        overrides = dict(name_or_config)
        base = overrides.pop("base", None)
        fields = {f.name for f in dataclasses.fields(ZipformerConfig)}
        unknown = set(overrides) - fields
        if unknown:
            raise ValueError(f"unknown Zipformer config keys {sorted(unknown)}")
        if base is None:
            return ZipformerConfig(**overrides)
        if base not in NAMED_CONFIGS:
            raise ValueError(
                f"unknown Zipformer base config {base!r} in {name_or_config}; "
                f"known: {sorted(NAMED_CONFIGS)}"
            )
        return ZipformerConfig(**{**NAMED_CONFIGS[base], **overrides})
    raise TypeError(f"name_or_config must be str, dict or ZipformerConfig, got {name_or_config!r}")
