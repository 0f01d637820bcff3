"""Pitch features for tonal languages (numpy only; the lhotse extractor of fbank + pitch is
:mod:`gmot.data.fbank_pitch`).

Mandarin tells characters apart by tone (the pitch contour of a syllable: 是 shi4 against 时
shi2), and log-mel fbank carries pitch only implicitly, as the positions of low harmonics. Kaldi's
Mandarin recipes therefore append pitch features to the filterbank; this module does the same
with its own tracker, which needs nothing beyond numpy:

* each 10 ms frame's autocorrelation is taken over a Hann window of three periods of the lowest
  pitch (``3 / min_f0`` seconds), with the spectrum above 1 kHz (formants, fricatives) left out,
  and divided by the window's own autocorrelation (Boersma's normalisation: a periodic signal
  then scores close to 1 at its period, noise close to 0);
* each frame scores a log grid of candidate pitches between ``min_f0`` and ``max_f0`` by the
  autocorrelation at their periods (a small cost per octave favours the higher of two near-equal
  candidates, against period doubling);
* a Viterbi path through the frames maximises the scores minus a cost per octave of change
  from one frame to the next, so that an octave jump or a formant peak in a frame or two is not
  followed while a real glide is; through unvoiced frames the path simply continues, as Kaldi's
  pitch interpolates;
* the path's log F0 is median-smoothed over three frames and its slope is added; its score is
  the voicing strength.

Per frame the three features are ``[voicing in [0, 1], log F0 (log Hz), 10 x delta log F0 per
frame]``. They are not normalised per speaker: the recipes' per-utterance input normalisation
(``ZipformerConfig.input_norm``) removes each utterance's mean log F0, which leaves the contour,
what a tone is. Frames are centred where lhotse's ``Fbank`` (``snip_edges=False``) centres
them, so the two line up frame for frame.
"""

from __future__ import annotations

import numpy as np

PITCH_DIMS = 3  # voicing, log F0, delta log F0
FBANK_BINS = 80
MIN_F0 = 50.0  # Hz: the pitch search range
MAX_F0 = 400.0


def _frames(x: np.ndarray, num_frames: int, shift: int, win: int) -> np.ndarray:
    """(N,) -> (num_frames, win): frame i centred on sample ``i * shift + shift // 2``."""
    half = win // 2
    need = (num_frames - 1) * shift + shift // 2 + win + 1
    pad_right = max(0, need - half - x.size)
    xp = np.pad(x, (half, pad_right))
    starts = np.arange(num_frames) * shift + shift // 2
    idx = starts[:, None] + np.arange(win)[None, :]
    return xp[idx]


def pitch_features(
    samples: np.ndarray,
    sampling_rate: int,
    num_frames: int,
    *,
    frame_shift: float = 0.01,
    min_f0: float = MIN_F0,
    max_f0: float = MAX_F0,
    lowpass: float = 1000.0,
    octave_cost: float = 0.01,
    jump_cost: float = 1.0,
    num_candidates: int = 96,
) -> np.ndarray:
    """Pitch features of one waveform.

    Args:
        samples: (N,) float waveform.
        sampling_rate: Hz.
        num_frames: output frames (the fbank's frame count, 100 Hz by default).
        frame_shift: seconds between frames.
        min_f0, max_f0: the pitch search range in Hz.
        lowpass: Hz; the autocorrelation uses the spectrum up to here.
        octave_cost: score subtracted per octave below ``max_f0`` (favours the shorter period).
        jump_cost: score subtracted per octave of pitch change between neighbouring frames.
        num_candidates: candidate pitches, log-spaced over the range (96: steps of about 2 %).

    Returns:
        (num_frames, 3) float32: voicing in [0, 1], log F0 in log Hz, 10 x its per-frame slope.
    """
    if samples.ndim != 1:
        raise ValueError(f"samples must be 1-D (N,), got shape {samples.shape}")
    if not 0 < min_f0 < max_f0 < sampling_rate / 4:
        raise ValueError(f"need 0 < min_f0 < max_f0 < sampling_rate / 4, got {min_f0}, {max_f0}")
    out = np.zeros((max(num_frames, 0), PITCH_DIMS), dtype=np.float32)
    if num_frames <= 0:
        return out
    shift = int(round(frame_shift * sampling_rate))
    win = int(round(3.0 * sampling_rate / min_f0))
    max_lag = int(np.ceil(sampling_rate / min_f0))
    nfft = 1 << int(np.ceil(np.log2(2 * win)))

    x = np.asarray(samples, dtype=np.float64)
    fr = _frames(x - x.mean(), num_frames, shift, win)
    fr = fr - fr.mean(axis=1, keepdims=True)
    w = np.hanning(win)
    # low-passed autocorrelation: spectrum above ``lowpass`` Hz (formants, fricatives) dropped
    keep = np.fft.rfftfreq(nfft, 1.0 / sampling_rate) <= lowpass
    spec = np.abs(np.fft.rfft(fr * w, nfft)) ** 2 * keep
    acf = np.fft.irfft(spec, nfft)[:, : max_lag + 2]
    acw = np.fft.irfft(np.abs(np.fft.rfft(w, nfft)) ** 2 * keep, nfft)[: max_lag + 2]
    energy = acf[:, 0]
    r = acf / np.maximum(energy[:, None], 1e-20) / (acw / acw[0])[None, :]

    # candidate pitches on a log grid; each frame's score at a pitch is the autocorrelation at
    # its lag (linear interpolation between integer lags)
    grid = np.exp(np.linspace(np.log(min_f0), np.log(max_f0), num_candidates))
    cand_lag = sampling_rate / grid
    lo = np.floor(cand_lag).astype(int)
    frac = cand_lag - lo
    score = r[:, lo] * (1 - frac) + r[:, lo + 1] * frac  # (T, J)
    local = score - octave_cost * np.log2(cand_lag / cand_lag.min())[None, :]
    # Viterbi path that maximises the scores minus ``jump_cost`` per octave of change between
    # frames: octave errors and formant peaks of single frames are not followed
    octaves = np.abs(np.log2(grid[:, None] / grid[None, :]))  # (J, J)
    trans = jump_cost * octaves
    acc = local[0].copy()
    back = np.zeros((num_frames, num_candidates), dtype=np.int64)
    for t in range(1, num_frames):
        cand = acc[:, None] - trans  # (from, to)
        back[t] = np.argmax(cand, axis=0)
        acc = cand[back[t], np.arange(num_candidates)] + local[t]
    path = np.empty(num_frames, dtype=np.int64)
    path[-1] = int(np.argmax(acc))
    for t in range(num_frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    rows = np.arange(num_frames)
    voicing = np.clip(score[rows, path], 0.0, 1.0)
    voicing[energy < 1e-10 * win] = 0.0  # digital silence
    log_f0 = np.log(grid[path])
    if num_frames >= 3:  # median of three
        p = np.pad(log_f0, 1, mode="edge")
        log_f0 = np.median(np.stack([p[:-2], p[1:-1], p[2:]]), axis=0)
    delta = np.gradient(log_f0) if num_frames > 1 else np.zeros(1)
    out[:, 0] = voicing
    out[:, 1] = log_f0
    out[:, 2] = 10.0 * delta
    return out


def input_dim(pitch: bool) -> int:
    """Model input features per frame: 80 fbank bins, plus 3 with pitch."""
    return FBANK_BINS + (PITCH_DIMS if pitch else 0)


def feature_kind(num_features: int) -> str:
    """A name for a model input width: ``"80-bin fbank"`` or ``"80-bin fbank + 3 pitch"``."""
    if num_features == FBANK_BINS + PITCH_DIMS:
        return f"{FBANK_BINS}-bin fbank + {PITCH_DIMS} pitch"
    return f"{num_features}-bin fbank"


def make_extractor(num_features: int = FBANK_BINS, sampling_rate: int = 16000):
    """The feature extractor behind a model's ``num_features``: 80 = lhotse ``Fbank`` (80 bins),
    83 = fbank + pitch (:class:`gmot.data.fbank_pitch.FbankPitch`)."""
    from lhotse import Fbank, FbankConfig

    if num_features == FBANK_BINS:
        return Fbank(FbankConfig(num_mel_bins=FBANK_BINS, sampling_rate=sampling_rate))
    if num_features == FBANK_BINS + PITCH_DIMS:
        from gmot.data.fbank_pitch import FbankPitch, FbankPitchConfig

        return FbankPitch(FbankPitchConfig(sampling_rate=sampling_rate, num_mel_bins=FBANK_BINS))
    raise ValueError(
        f"no feature extractor gives {num_features} dimensions: {FBANK_BINS} (fbank) or "
        f"{FBANK_BINS + PITCH_DIMS} (fbank + pitch)"
    )
