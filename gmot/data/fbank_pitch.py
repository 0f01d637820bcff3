"""lhotse extractor of fbank + pitch: (T, 80 + 3) features per recording.

A module of its own (importing lhotse) so that :mod:`gmot.data.pitch` stays numpy-only, and at
module level so that lhotse can pickle the extractor into its feature-extraction worker
processes (``compute_and_store_features(num_jobs > 1)``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from lhotse import Fbank, FbankConfig
from lhotse.features.base import FeatureExtractor, register_extractor

from gmot.data.pitch import FBANK_BINS, MAX_F0, MIN_F0, PITCH_DIMS, pitch_features


@dataclass
class FbankPitchConfig:
    """The lhotse ``FbankConfig`` fields that differ between uses, plus the pitch search range
    in Hz (:func:`gmot.data.pitch.pitch_features`)."""

    sampling_rate: int = 16000
    num_mel_bins: int = FBANK_BINS
    frame_shift: float = 0.01
    min_f0: float = MIN_F0
    max_f0: float = MAX_F0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> FbankPitchConfig:
        return FbankPitchConfig(**data)


@register_extractor
class FbankPitch(FeatureExtractor):
    """lhotse ``Fbank`` (``num_mel_bins``, its other defaults) with
    :func:`gmot.data.pitch.pitch_features` appended: (T, num_mel_bins + 3) float32."""

    name = "gmot-fbank-pitch"
    config_type = FbankPitchConfig

    def __init__(self, config: FbankPitchConfig | None = None) -> None:
        super().__init__(config=config)
        c = self.config
        self.fbank = Fbank(
            FbankConfig(
                sampling_rate=c.sampling_rate,
                num_mel_bins=c.num_mel_bins,
                frame_shift=c.frame_shift,
            )
        )

    @property
    def frame_shift(self) -> float:
        return self.config.frame_shift

    def feature_dim(self, sampling_rate: int) -> int:
        return self.config.num_mel_bins + PITCH_DIMS

    def extract(self, samples: Any, sampling_rate: int) -> np.ndarray:
        """(N,) or (1, N) mono samples -> (T, num_mel_bins + 3) features."""
        x = samples.numpy() if hasattr(samples, "numpy") else np.asarray(samples)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            raise ValueError(f"FbankPitch needs mono audio (N,), got shape {x.shape}")
        fb = np.asarray(self.fbank.extract(x.astype(np.float32), sampling_rate))
        c = self.config
        p = pitch_features(
            x, sampling_rate, fb.shape[0], frame_shift=c.frame_shift, min_f0=c.min_f0,
            max_f0=c.max_f0,
        )  # fmt: skip
        return np.concatenate([fb, p], axis=1).astype(np.float32)
