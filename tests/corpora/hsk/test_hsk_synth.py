"""gmot.corpora.hsk.synth and .cli: the corpus on disk, its reproducibility, the command lines."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gmot.corpora.hsk.cli import main_text_set
from gmot.corpora.hsk.plan import plan_text_set
from gmot.corpora.hsk.synth import synthesize_corpus
from gmot.corpora.hsk.text import pinyin_of

SCRIPT = Path(__file__).resolve().parents[3] / "local" / "synth_hsk_corpus.py"


def test_tiny_corpus_read_by_lhotse(tiny_hsk):
    from lhotse.recipes import prepare_aishell

    root, counts = tiny_hsk
    assert counts == {"train": 20, "dev": 2, "test": 2}
    assert (root / "data_aishell" / "LICENSE-and-ATTRIBUTION.txt").read_text().count("CC-BY-SA-4.0")
    m = prepare_aishell(root)
    spk = {}
    texts = {}
    for part, n in counts.items():
        sups = list(m[part]["supervisions"])
        recs = list(m[part]["recordings"])
        assert len(sups) == n and len(recs) == n
        spk[part] = {s.speaker for s in sups}
        texts[part] = {s.text for s in sups}
        for r, s in zip(recs, sups):
            assert r.sampling_rate == 16000 and r.num_channels == 1
            assert 0.5 < r.duration < 10.0, r.duration
            assert s.id.startswith("BAC009" + s.speaker) and s.text and " " not in s.text
            x = r.load_audio()[0]
            assert np.sqrt(np.mean(x**2)) > 1e-3  # non-silent
    # speakers and sentences held out between splits
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"]
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["dev"]


def _run_synth(out: Path, *extra: str) -> list[tuple[str, bytes]]:
    cmd = [sys.executable, str(SCRIPT), "--output-dir", str(out), "--num-train", "20"]
    cmd += ["--num-dev", "1", "--num-test", "1", "--utts-per-speaker", "5", *extra]
    subprocess.run(cmd, check=True, capture_output=True)
    files = sorted(out.rglob("*.wav")) + sorted(out.rglob("*.txt")) + sorted(out.rglob("*.tsv"))
    return [(f.relative_to(out).as_posix(), f.read_bytes()) for f in files]


def test_deterministic_given_seed(tmp_path):
    # espeak-ng carries a little internal state between calls, so the guarantee is per fresh
    # process: the same command line gives byte-identical files.
    a = _run_synth(tmp_path / "a")
    b = _run_synth(tmp_path / "b")
    assert len(a) == 22 + 2 + 2
    assert a == b
    c = _run_synth(tmp_path / "c", "--seed", "7")
    assert a != c


def test_output_independent_of_num_jobs(tmp_path):
    kw = dict(num_train=20, num_dev=2, num_test=2, utts_per_speaker=3, seed=5, chunk_size=7)
    synthesize_corpus(tmp_path / "one", num_jobs=1, **kw)
    synthesize_corpus(tmp_path / "two", num_jobs=2, **kw)
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.*"))
    assert one == two and len(one) == 24 + 4
    for rel in one:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_cli_reports_impossible_request(tmp_path):
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--output-dir", str(tmp_path), "--held-sentences", "500"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "held_sentences=500" in r.stderr
    assert not (tmp_path / "data_aishell").exists()


def test_text_set_reads_any_text(tmp_path):
    lines = ["我们 明天 见。", "", "abc", "你好吗"]
    utts = plan_text_set(
        lines, readings=3, utts_per_speaker=2, variants=["m1", "f1"], pitch_range=(5, 6), seed=1
    )
    assert len(utts) == 6
    assert sorted({u.sentence.text for u in utts}) == ["你好吗", "我们 明天 见"]
    for u in utts:
        assert u.split == "test" and u.speaker.variant in ("m1", "f1") and 5 <= u.pitch <= 6
        assert u.pinyin == " ".join(pinyin_of(u.sentence.chars))
    assert len({u.utt_id for u in utts}) == 6
    with pytest.raises(ValueError, match="no line"):
        plan_text_set(["abc"])
    with pytest.raises(ValueError, match="whisper"):
        plan_text_set(["你好"], variants=["whisper"])
    text = tmp_path / "t.txt"
    text.write_text("你好\n", encoding="utf-8")
    assert (
        main_text_set(
            ["--text-file", str(text), "--output-dir", str(tmp_path / "o"), "--readings", "2"]
        )
        == 0
    )
    wavs = sorted((tmp_path / "o" / "data_aishell" / "wav" / "test").rglob("*.wav"))
    assert len(wavs) == 2
    assert (
        main_text_set(["--text-file", str(tmp_path / "missing.txt"), "--output-dir", str(tmp_path)])
        == 2
    )


def test_rewrite_removes_the_previous_corpus(tmp_path):
    # A corpus written earlier with other options (here: 10 utterances per speaker, so wav
    # names W0006.. that a 5-per-speaker plan never uses) must not survive a rewrite: prepare
    # would read every wav it finds, and stale ones whose names the new transcript reuses
    # would carry another sentence's text.
    kw = dict(num_train=20, num_dev=2, num_test=2, max_level=1, seed=3)
    synthesize_corpus(tmp_path, utts_per_speaker=10, **kw)
    synthesize_corpus(tmp_path, utts_per_speaker=5, **kw)
    root = tmp_path / "data_aishell"
    wavs = {p.stem for p in (root / "wav").rglob("*.wav")}
    listed = {
        line.split()[0]
        for line in (root / "transcript/aishell_transcript_v0.8.txt").read_text().splitlines()
    }
    assert wavs == listed and len(wavs) == 24


def test_refuses_to_write_into_foreign_audio(tmp_path):
    foreign = tmp_path / "data_aishell/wav/train/S0002/BAC009S0002W0001.wav"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"RIFF")  # someone's real corpus: no gmot licence file beside it
    with pytest.raises(ValueError, match="not written by gmot"):
        synthesize_corpus(tmp_path, num_train=20, num_dev=2, num_test=2, utts_per_speaker=5, seed=3)
    assert foreign.read_bytes() == b"RIFF"


def test_forkserver_workers_write_what_spawned_workers_write(tmp_path, monkeypatch):
    """The workers forked from a preloaded server give the bytes of fresh spawned processes,
    also when the parent has run espeak-ng itself (its state must not reach the workers)."""
    import multiprocessing as mp

    from gmot.corpora.espeak import EspeakSynth
    from gmot.corpora.hsk import synth

    kw = dict(num_train=20, num_dev=2, num_test=2, utts_per_speaker=3, seed=5, chunk_size=5)
    EspeakSynth().synth("ni3 hao3", variant="m3", rate=300, pitch=90)
    assert synth._worker_context().get_start_method() == "forkserver"
    synthesize_corpus(tmp_path / "fork", num_jobs=2, **kw)
    monkeypatch.setattr(synth, "_worker_context", lambda: mp.get_context("spawn"))
    synthesize_corpus(tmp_path / "spawn", num_jobs=2, **kw)
    files = sorted(p.relative_to(tmp_path / "fork") for p in (tmp_path / "fork").rglob("*.wav"))
    assert len(files) == 24
    for rel in files:
        fork, spawn = (tmp_path / d / rel for d in ("fork", "spawn"))
        assert fork.read_bytes() == spawn.read_bytes(), rel
