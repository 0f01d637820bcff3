"""gmot.corpora.hsk.synth.speech_span and gmot.corpora.hsk.trim: the padding is known exactly."""

import numpy as np
import pytest

from gmot.corpora.hsk.synth import TARGET_SR, augment, speech_span, utterance_rng
from gmot.corpora.hsk.trim import trim_silence


@pytest.mark.parametrize("seconds", [0.4, 1.5, 2.7])
def test_speech_span_is_where_augment_put_the_speech(seconds):
    """augment's own output: the span re-drawn by speech_span holds the speech sample for
    sample (its length is the input's when no fill was needed) and the padding before it holds
    only noise."""
    sr = TARGET_SR
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * 440 * t)
    for utt in ("BAC009S0002W0001", "BAC009S0107W0013"):
        y = augment(x, utterance_rng(42, utt))
        start, end = speech_span(utt, 42, y.size)
        a, b = round(start * sr), round(end * sr)
        if y.size > int(1.1 * sr):
            assert b - a == x.size
        else:  # filled up to 1.1 s: the span ends at or after the speech
            assert b - a >= x.size
        speech = np.mean(y[a : a + x.size] ** 2)
        assert np.mean(y[:a] ** 2) < speech / 2  # noise only (SNR >= 5 dB over the signal)
        # the padding is the generator's first two draws: another seed gives another span
        assert speech_span(utt, 7, y.size) != (start, end)
    with pytest.raises(ValueError, match="padding"):
        speech_span("BAC009S0002W0001", 42, 10)


def test_trim_silence_on_a_synthesised_corpus(tiny_hsk):
    """Trimmed cuts keep the text, cover the speech span plus the margin, and their audio is
    that slice of the recording."""
    from lhotse import CutSet
    from lhotse.recipes import prepare_aishell

    root, _ = tiny_hsk  # synthesised with seed 3
    m = prepare_aishell(root)["train"]
    cuts = CutSet.from_manifests(recordings=m["recordings"], supervisions=m["supervisions"])
    cuts = list(cuts)
    out, before, after = trim_silence(cuts, seed=3, margin=0.05)
    assert len(out) == len(cuts) and after < before
    for c, t in zip(cuts, out):
        start, end = speech_span(c.recording.id, 3, c.recording.num_samples)
        assert t.id == c.id and t.supervisions[0].text == c.supervisions[0].text
        assert t.start == pytest.approx(max(0.0, start - 0.05), abs=1e-4)
        assert t.end == pytest.approx(min(c.duration, end + 0.05), abs=1e-4)
        sup = t.supervisions[0]
        assert sup.start == 0 and sup.duration == pytest.approx(t.duration)
        full = c.load_audio()[0]
        got = t.load_audio()[0]
        a = round(t.start * c.sampling_rate)
        np.testing.assert_allclose(got, full[a : a + got.size])
        # what was cut off is quieter than what was kept
        assert np.mean(full[:a] ** 2) < np.mean(got**2)
    with pytest.raises(ValueError, match="whole, untrimmed"):
        trim_silence(out[:1], seed=3, margin=0.05)
    with pytest.raises(ValueError, match="margin"):
        trim_silence(cuts[:1], seed=3, margin=-1)
