"""gmot.corpora.espeak: in-process espeak-ng synthesis."""

import numpy as np

from gmot.corpora.espeak import EspeakSynth


def test_pinyin_drives_audio():
    tts = EspeakSynth("cmn-latn-pinyin")
    a = tts.synth("ma1 ma1", rate=160, pitch=50).astype(np.float64)
    b = tts.synth("ma3 ma3", rate=160, pitch=50).astype(np.float64)
    c = tts.synth("ma1 ma1 ma1 ma1 ma1 ma1", rate=160, pitch=50)
    assert len(c) > 2 * len(a)  # more syllables -> longer audio
    n = min(len(a), len(b))
    assert not np.allclose(a[:n], b[:n])  # tone changes the waveform
