"""Audio -> 80-dim log-mel fbank for decoding without manifests (pretrained.py), and the
encoder's minimum input length (decode.py and pretrained.py skip shorter utterances).

Features match the training front end: lhotse ``Fbank`` (80 mel bins, 25 ms window, 10 ms
shift, no dither, ``snip_edges=False``) on 16 kHz audio.
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


def _fbank():
    from lhotse import Fbank, FbankConfig

    return Fbank(FbankConfig(num_mel_bins=80, sampling_rate=SAMPLING_RATE))


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
    waves: list[np.ndarray], sampling_rate: int = SAMPLING_RATE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fbank of each waveform (N_i,) -> zero-padded features (B, T, 80) float32 and lens (B,)."""
    if not waves:
        raise ValueError("compute_fbank got no waveforms")
    extractor = _fbank()
    feats = [torch.from_numpy(extractor.extract(w, sampling_rate)).float() for w in waves]
    lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
    padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, 80)
    return padded, lens
