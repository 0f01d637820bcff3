"""Audio -> the model's input features for decoding without manifests (pretrained.py), and the
encoder's minimum input length (decode.py and pretrained.py skip shorter utterances).

Features match the training front end: lhotse ``Fbank`` (80 mel bins, 25 ms window, 10 ms
shift, no dither, ``snip_edges=False``) on 16 kHz audio, with 3 pitch features appended for a
model trained with ``--pitch 1`` (``num_features`` 83, :mod:`gmot.data.pitch`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SAMPLING_RATE = 16000
FRAME_SHIFT_S = 0.01  # seconds per feature frame
# The Zipformer's Conv2d front end (T' = ((T - 7) // 2 + 1) // 2) needs at least 9 fbank frames
# (0.09 s); gmot.models.zipformer.encoder rejects shorter inputs.
MIN_ENCODER_FRAMES = 9


def too_short(lens: torch.Tensor, min_frames: int = MIN_ENCODER_FRAMES) -> list[int]:
    """Indices of the utterances whose feature lengths ``lens`` (B,) (frames at 100 Hz) are below
    ``min_frames``: too short for the encoder, to be skipped and reported."""
    return [i for i, n in enumerate(lens.tolist()) if n < min_frames]


def describe_short(name: str, frames: int, min_frames: int = MIN_ENCODER_FRAMES) -> str:
    """``"<name>: 5 frames (0.05 s), below the encoder's minimum of 9 (0.09 s)"``."""
    return (
        f"{name}: {frames} frames ({frames * FRAME_SHIFT_S:.2f} s), below the encoder's minimum "
        f"of {min_frames} ({min_frames * FRAME_SHIFT_S:.2f} s)"
    )


def model_num_features(model) -> int:
    """Input features per frame a model reads: its ``model_config`` (a PyTorch model), else its
    or its encoder's ``num_features`` (an ONNX wrapper); 80 when none says."""
    cfg = getattr(model, "model_config", None)  # AsrModel: the checkpoint's dict
    value = cfg.get("num_features") if isinstance(cfg, dict) else None
    if value is None:
        value = getattr(model, "num_features", None)
    if value is None:
        value = getattr(getattr(model, "encoder", None), "num_features", None)
    return int(value or 80)


def read_wave(path: str | Path, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Read an audio file as mono float32 samples (N,) at ``sampling_rate`` Hz (resampled).

    Raises:
      FileNotFoundError / ValueError naming the file when it is missing or unreadable.
    """
    from lhotse import Recording

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        rec = Recording.from_file(path)
        if rec.sampling_rate != sampling_rate:
            rec = rec.resample(sampling_rate)
        samples = rec.load_audio()  # (channels, N)
    except Exception as exc:
        raise ValueError(f"cannot read audio file {path}: {type(exc).__name__}: {exc}") from exc
    if samples.ndim == 2:
        samples = samples.mean(axis=0)
    if samples.size == 0:
        raise ValueError(f"audio file {path} has no samples")
    return samples.astype(np.float32)


def compute_fbank(
    waves: list[np.ndarray], sampling_rate: int = SAMPLING_RATE, num_features: int = 80
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of each waveform (N_i,) -> zero-padded (B, T, num_features) float32 and lens
    (B,): 80 = fbank, 83 = fbank + pitch (:func:`model_num_features` gives a model's)."""
    from gmot.data.pitch import make_extractor

    if not waves:
        raise ValueError("compute_fbank got no waveforms")
    extractor = make_extractor(num_features, sampling_rate)
    feats = [torch.from_numpy(extractor.extract(w, sampling_rate)).float() for w in waves]
    lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
    padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, F)
    return padded, lens
