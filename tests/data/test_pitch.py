import numpy as np
import pytest

from gmot.data.pitch import (
    FBANK_BINS,
    PITCH_DIMS,
    feature_kind,
    input_dim,
    make_extractor,
    pitch_features,
)

SR = 16000


def harmonic(f0: np.ndarray, num_harmonics: int = 8, tilt: float = 1.0) -> np.ndarray:
    """A periodic signal whose pitch follows ``f0`` (Hz per sample): harmonics k = 1..K with
    amplitude 1 / k**tilt, like a voiced vowel's source spectrum."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return sum(np.sin(k * phase) / k**tilt for k in range(1, num_harmonics + 1))


def frame_times(n: int) -> np.ndarray:
    """Centres (s) of lhotse Fbank frames (10 ms shift, snip_edges=False)."""
    return np.arange(n) * 0.01 + 0.005


@pytest.mark.parametrize("lo,hi", [(120.0, 260.0), (260.0, 90.0), (60.0, 85.0)])
def test_tracks_a_gliding_pitch_within_two_percent(lo, hi):
    rng = np.random.default_rng(0)
    dur = 1.2
    t = np.arange(int(dur * SR)) / SR
    f0 = lo + (hi - lo) * t / dur
    x = harmonic(f0) + 0.05 * rng.standard_normal(t.size)  # about 25 dB SNR
    n = int(dur * 100)
    p = pitch_features(x, SR, n)
    assert p.shape == (n, PITCH_DIMS) and p.dtype == np.float32
    true = np.interp(frame_times(n), t, f0)
    inner = slice(5, n - 5)  # frames whose window lies inside the signal
    rel = np.abs(np.exp(p[inner, 1]) / true[inner] - 1)
    assert rel.max() < 0.02, f"max relative F0 error {rel.max():.4f}"
    assert p[inner, 0].min() > 0.8, f"voicing {p[inner, 0].min():.3f} on a clean periodic signal"
    # the slope column is 10 x the per-frame change of log F0, and its sign follows the glide
    slope = 10 * np.diff(np.log(true[inner])).mean()
    assert np.sign(p[inner, 2].mean()) == np.sign(slope)
    assert abs(p[inner, 2].mean() - slope) < 0.02 + 0.2 * abs(slope)


def test_a_real_octave_change_is_followed_and_noise_is_unvoiced():
    rng = np.random.default_rng(1)
    t = np.arange(int(1.0 * SR)) / SR
    f0 = np.where(t < 0.5, 100.0, 200.0)
    x = np.concatenate([harmonic(f0), 0.3 * rng.standard_normal(int(0.5 * SR))])
    p = pitch_features(x, SR, 150)
    est = np.exp(p[:, 1])
    assert np.allclose(est[10:40], 100, rtol=0.03), est[10:40]
    assert np.allclose(est[60:90], 200, rtol=0.03), est[60:90]
    assert p[10:40, 0].min() > 0.8 and p[60:90, 0].min() > 0.8
    assert p[110:145, 0].mean() < 0.5, f"white noise voicing {p[110:145, 0].mean():.3f}"


def test_silence_gives_zero_voicing_and_finite_values():
    p = pitch_features(np.zeros(8000), SR, 50)
    assert np.isfinite(p).all()
    assert (p[:, 0] == 0).all()
    assert pitch_features(np.zeros(10), SR, 0).shape == (0, PITCH_DIMS)
    with pytest.raises(ValueError, match="1-D"):
        pitch_features(np.zeros((2, 100)), SR, 5)


def test_voicing_onset_lines_up_with_the_fbank_frames():
    """A vowel starting at 0.40 s: the voicing column rises at the fbank frames around 0.40 s."""
    t = np.arange(int(0.4 * SR)) / SR
    x = np.concatenate([np.zeros(int(0.4 * SR)), harmonic(np.full(t.size, 150.0))])
    p = pitch_features(x, SR, 80)
    onset = int(np.argmax(p[:, 0] > 0.5))
    assert 35 <= onset <= 41, f"voicing crosses 0.5 at frame {onset}, expected about 38-40"


@pytest.mark.parametrize("num_samples", [1600, 16000 + 37, 29999])
def test_fbank_pitch_extractor_is_fbank_plus_three_columns(num_samples):
    from lhotse import Fbank, FbankConfig

    x = (0.1 * np.random.default_rng(2).standard_normal(num_samples)).astype(np.float32)
    fb = Fbank(FbankConfig(num_mel_bins=FBANK_BINS)).extract(x, SR)
    ex = make_extractor(input_dim(True))
    y = ex.extract(x, SR)
    assert y.shape == (fb.shape[0], FBANK_BINS + PITCH_DIMS)
    assert ex.feature_dim(SR) == FBANK_BINS + PITCH_DIMS
    np.testing.assert_allclose(y[:, :FBANK_BINS], fb, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y[:, FBANK_BINS:], pitch_features(x, SR, fb.shape[0]), atol=1e-6)


def test_extractor_choice_and_names():
    from lhotse import Fbank
    from lhotse.features.base import FEATURE_EXTRACTORS

    assert isinstance(make_extractor(80), Fbank)
    ex = make_extractor(83)
    assert FEATURE_EXTRACTORS[ex.name] is type(ex)  # registered: manifests name its type
    assert input_dim(False) == 80 and input_dim(True) == 83
    assert feature_kind(83) == "80-bin fbank + 3 pitch"
    with pytest.raises(ValueError, match="81"):
        make_extractor(81)


def test_fbank_pitch_extractor_pickles_for_worker_processes():
    """lhotse sends the extractor to its worker processes (num_jobs > 1) by pickling it."""
    import pickle

    x = (0.1 * np.random.default_rng(3).standard_normal(8000)).astype(np.float32)
    ex = make_extractor(83)
    again = pickle.loads(pickle.dumps(ex))
    assert type(again) is type(ex) and again.config == ex.config
    np.testing.assert_array_equal(again.extract(x, SR), ex.extract(x, SR))
