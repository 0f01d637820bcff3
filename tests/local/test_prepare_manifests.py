"""local/prepare_manifests.py counts transcript lines without a wav (issue 21 point 6)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_prepare_sh import REPO, _make_aishell


def test_transcript_line_without_wav_is_counted(tmp_path):
    root = tmp_path / "corpus"
    _make_aishell(root)
    t = root / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    t.write_text(t.read_text() + "BAC009S9999W0001 我 们\nBAC009S9999W0002 今 天\n")
    r = subprocess.run(
        [sys.executable, str(REPO / "local" / "prepare_manifests.py"), "--corpus", "aishell",
         "--corpus-dir", str(root), "--output-dir", str(tmp_path / "out")],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 line(s) have no wav file" in r.stderr
    assert "BAC009S9999W0001, BAC009S9999W0002" in r.stderr
    assert Path(tmp_path / "out" / "aishell_cuts_train.jsonl.gz").is_file()


def test_only_the_asked_splits_are_read(tmp_path):
    import shutil

    from gmot.data.layouts.aishell import prepare_aishell_cuts

    root = tmp_path / "corpus"
    _make_aishell(root)
    shutil.rmtree(root / "data_aishell" / "wav" / "train")  # a test-only set
    counts = prepare_aishell_cuts(root, tmp_path / "out", "hsk", ("test",))
    assert list(counts) == ["test"] and counts["test"] > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hsk_cuts_test.jsonl.gz"]
    with pytest.raises(FileNotFoundError, match="wav/train"):
        prepare_aishell_cuts(root, tmp_path / "out2", "hsk")
    with pytest.raises(ValueError, match="subset"):
        prepare_aishell_cuts(root, tmp_path / "out3", "hsk", ("eval",))
