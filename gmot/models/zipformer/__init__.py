"""Zipformer encoder (Yao et al., ICLR 2024, arXiv 2310.11230), written from the paper.

Public entry points: :func:`build_encoder`, :class:`Zipformer`, :class:`ZipformerConfig`,
:func:`set_batch_count`, :func:`output_lengths`, and for causal (streaming) encoders
:func:`encode_streaming` (``gmot.models.zipformer.streaming``).
"""

from gmot.models.zipformer.config import NAMED_CONFIGS, ZipformerConfig, get_config
from gmot.models.zipformer.encoder import Zipformer, build_encoder, output_lengths
from gmot.models.zipformer.scaling import (
    Balancer,
    BiasNorm,
    ScheduledFloat,
    Whiten,
    set_batch_count,
    swoosh_l,
    swoosh_r,
)
from gmot.models.zipformer.streaming import encode_streaming

__all__ = [
    "NAMED_CONFIGS",
    "ZipformerConfig",
    "get_config",
    "Zipformer",
    "build_encoder",
    "encode_streaming",
    "output_lengths",
    "Balancer",
    "BiasNorm",
    "ScheduledFloat",
    "Whiten",
    "set_batch_count",
    "swoosh_l",
    "swoosh_r",
]
