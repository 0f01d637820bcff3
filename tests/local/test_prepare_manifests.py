"""local/prepare_manifests.py counts transcript lines without a wav (issue 21 point 6)."""

import os
import subprocess
import sys
from pathlib import Path

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
