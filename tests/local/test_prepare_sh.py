"""Run the recipes' prepare.sh offline on tiny corpora (AISHELL layout built here)."""

import dataclasses
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gmot.corpora.hsk.text import TextBalance

REPO = Path(__file__).resolve().parents[2]


def _recipe_copy(tmp_path: Path, corpus: str) -> Path:
    """Copy prepare.sh into a scratch recipe dir with a local -> repo/local symlink."""
    d = tmp_path / corpus / "ASR"
    d.mkdir(parents=True)
    shutil.copy(REPO / "egs" / corpus / "ASR" / "prepare.sh", d / "prepare.sh")
    (d / "local").symlink_to(REPO / "local")
    return d


def _run(d: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    return subprocess.run(
        ["bash", str(d / "prepare.sh"), *args], cwd=d, env=env, capture_output=True, text=True
    )


def _make_aishell(root: Path) -> dict[str, str]:
    """Tiny AISHELL-1 copy: 3 speakers, tones as audio; one corrupt wav, one empty transcript."""
    rng = np.random.default_rng(0)
    texts = {}
    lines = []
    chars = "我们今天去学校吃饭"
    for split, spk in (("train", "S0002"), ("train", "S0003"), ("dev", "S0724"), ("test", "S0764")):
        d = root / "data_aishell" / "wav" / split / spk
        d.mkdir(parents=True, exist_ok=True)
        for k in range(3):
            utt = f"BAC009{spk}W{k + 1:04d}"
            t = np.arange(int(16000 * rng.uniform(1.5, 3.0))) / 16000
            sf.write(d / f"{utt}.wav", 0.3 * np.sin(2 * np.pi * (200 + 50 * k) * t), 16000)
            words = " ".join(chars[(k + j) % len(chars)] * 1 for j in range(4))
            texts[utt] = words.replace(" ", "")
            lines.append(f"{utt} {words}")
    (root / "data_aishell/wav/train/S0002/BAC009S0002W0003.wav").write_bytes(b"RIFFjunk")
    lines = [ln if not ln.startswith("BAC009S0003W0001") else "BAC009S0003W0001" for ln in lines]
    (root / "data_aishell/transcript").mkdir(parents=True)
    (root / "data_aishell/transcript/aishell_transcript_v0.8.txt").write_text(
        "\n".join(lines) + "\n", encoding="utf-8"
    )
    return texts


def _read_cuts(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_aishell_prepare_local_copy(tmp_path):
    texts = _make_aishell(tmp_path / "corpus")
    d = _recipe_copy(tmp_path, "aishell")
    r = _run(d, "--dl-dir", str(tmp_path / "corpus"), "--stage", "0", "--stop-stage", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "using local AISHELL copy" in out and "layout OK" in out
    assert "unreadable audio: 1" in out and "BAC009S0002W0003" in out
    assert "empty transcript: 1" in out and "BAC009S0003W0001" in out
    train = _read_cuts(d / "data/manifests/aishell_cuts_train.jsonl.gz")
    assert sorted(c["id"] for c in train) == [
        "BAC009S0002W0001",
        "BAC009S0002W0002",
        "BAC009S0003W0002",
        "BAC009S0003W0003",
    ]
    for c in train:
        sup = c["supervisions"][0]
        assert sup["text"] == texts[c["id"]] and sup["speaker"] == c["id"][6:11]
        assert "features" not in c  # on-the-fly fbank by default
    assert len(_read_cuts(d / "data/manifests/aishell_cuts_dev.jsonl.gz")) == 3
    tokens = (d / "data/lang_char/tokens.txt").read_text(encoding="utf-8").split("\n")
    assert tokens[:3] == ["<blk> 0", "<sos/eos> 1", "<unk> 2"]
    train_chars = {ch for c in train for ch in c["supervisions"][0]["text"]}
    assert {t.split()[0] for t in tokens[3:] if t} == train_chars
    # re-run: stages are skipped thanks to the .done markers
    r2 = _run(d, "--dl-dir", str(tmp_path / "corpus"), "--stage", "1", "--stop-stage", "2")
    assert r2.returncode == 0 and r2.stdout.count("exists, skipping") == 2


def test_aishell_missing_corpus_message(tmp_path):
    d = _recipe_copy(tmp_path, "aishell")
    r = _run(d, "--dl-dir", str(tmp_path / "nothing"), "--stage", "1", "--stop-stage", "1")
    assert r.returncode != 0
    assert (
        "data_aishell/transcript/aishell_transcript_v0.8.txt" in r.stderr and "--dl-dir" in r.stderr
    )


def test_unknown_option_rejected(tmp_path):
    d = _recipe_copy(tmp_path, "aishell")
    r = _run(d, "--no-such-option", "1")
    assert r.returncode != 0 and "unknown option --no-such-option" in r.stderr


@pytest.mark.parametrize("stop", ["2"])
def test_hsk_prepare_tiny(tmp_path, stop):
    d = _recipe_copy(tmp_path, "hsk")
    r = _run(
        d,
        "--num-train",
        "30",
        "--num-dev",
        "2",
        "--num-test",
        "2",
        "--max-level",
        "1",
        "--stop-stage",
        stop,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (d / "download/hsk/data_aishell/LICENSE-and-ATTRIBUTION.txt").is_file()
    n = {
        s: len(_read_cuts(d / f"data/manifests/hsk_cuts_{s}.jsonl.gz"))
        for s in ("train", "dev", "test")
    }
    assert n == {"train": 30, "dev": 2, "test": 2}
    assert (d / "data/lang_char/tokens.txt").is_file()
    # Stage 0 remembers its options: the same call skips, a call with other options fails
    # loudly (naming both settings) instead of silently reusing the corpus, and loses nothing.
    marker = d / "download/hsk/.done"
    recorded = marker.read_text().strip()
    assert recorded == (
        "num_train=30 num_dev=2 num_test=2 max_level=1 utts_per_speaker=20"
        " held_sentences=60 held_variants=0 seed=42"
        " text_flatten=0.5 text_backoff=0.3 coverage_target=100"
    )
    wavs = sorted(p.name for p in (d / "download/hsk").rglob("*.wav"))
    same = _run(d, "--num-train", "30", "--num-dev", "2", "--num-test", "2", "--stop-stage", "0")
    assert same.returncode == 0 and "exists, skipping" in same.stdout, same.stdout + same.stderr
    other = _run(d, "--num-train", "30", "--num-dev", "2", "--num-test", "2", "--max-level", "3")
    assert other.returncode != 0
    assert recorded in other.stdout and "max_level=3" in other.stdout, other.stdout
    assert "--force true" in other.stdout
    assert sorted(p.name for p in (d / "download/hsk").rglob("*.wav")) == wavs
    assert marker.read_text().strip() == recorded


def test_hsk_prepare_text_balance_defaults_are_text_balance():
    # prepare.sh repeats TextBalance's defaults as shell variables (the stage-0 marker records
    # the values it passes); they must stay equal, and each must reach both flag and marker.
    script = (REPO / "egs/hsk/ASR/prepare.sh").read_text()
    shell = dict(re.findall(r"^([a-z_]+)=(\S*)$", script, flags=re.M))
    known = re.search(r'^_gmot_known="([^"]*)"', script, flags=re.M).group(1).split()
    for f in dataclasses.fields(TextBalance):
        flag = f.metadata["flag"]
        var = flag.lstrip("-").replace("-", "_")
        assert var in shell, f"prepare.sh sets no default for {var} ({flag})"
        assert float(shell[var]) == f.default, (var, shell[var], f.default)
        assert var in known, var
        assert f'{flag} "${var}"' in script, f"prepare.sh does not pass {flag}"
        assert f"{var}=${var}" in script, f"the stage-0 marker does not record {var}"


def test_hsk_trim_silence_trims_training_cuts_only(tmp_path):
    """--trim-silence M (part of stage 1): training cuts start at their speech minus M (the
    padding re-drawn from the seed), dev and test stay whole; the marker records M, so another
    value (or none) stops instead of reusing the trimmed manifests."""
    from gmot.corpora.hsk.synth import speech_span

    d = _recipe_copy(tmp_path, "hsk")
    base = ("--num-train", "20", "--num-dev", "2", "--num-test", "2", "--stop-stage", "1")
    r = _run(d, *base, "--trim-silence", "0.05", "--seed", "5")
    assert r.returncode == 0, r.stdout + r.stderr
    cuts = {s: _read_cuts(d / f"data/manifests/hsk_cuts_{s}.jsonl.gz") for s in ("train", "dev")}
    for c in cuts["train"]:
        rec = c["recording"]
        start, end = speech_span(rec["id"], 5, rec["num_samples"])
        assert c["start"] == pytest.approx(start - 0.05, abs=1e-4)
        assert c["start"] + c["duration"] == pytest.approx(
            min(rec["duration"], end + 0.05), abs=1e-4
        )
        assert c["supervisions"][0]["duration"] == pytest.approx(c["duration"])
    for c in cuts["dev"]:
        assert c["start"] == 0 and c["duration"] == pytest.approx(c["recording"]["duration"])
    assert "trim_silence=0.05" in (d / "data/manifests/.hsk.done").read_text()
    for other in ("0.1", "none"):
        r = _run(d, *base, "--trim-silence", other, "--seed", "5")
        assert r.returncode != 0 and "data/manifests/.hsk.done was made with" in r.stdout, other
