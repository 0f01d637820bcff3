"""Every entry script imports the gmot of the repository it lives in, whatever else is on the path.

The shared venv holds no gmot (tools/setup_env.sh); a gmot elsewhere on the path (another
clone, a stale install, PYTHONPATH) must never win over the script's own repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENTRY_DIRS = ("egs/*/ASR/zipformer_gmot", "local", "tools", "bench")
IDIOM = re.compile(
    r"^_root = Path\(__file__\)\.resolve\(\)\.parents\[(\d)\]  # .*\n"
    r'if \(_root / "gmot" / "__init__\.py"\)\.is_file\(\):  # .*\n'
    r"    sys\.path\.insert\(0, str\(_root\)\)\n",
    re.M,
)


def _entry_scripts() -> list[Path]:
    files = sorted(f for d in ENTRY_DIRS for f in REPO.glob(f"{d}/*.py") if f.is_file())
    return [f for f in files if re.search(r"^\s*(from|import) gmot\b", f.read_text(), re.M)]


def test_every_entry_script_puts_its_repository_first() -> None:
    scripts = _entry_scripts()
    assert len(scripts) >= 20, scripts  # the globs still find the scripts
    for f in scripts:
        text = f.read_text()
        m = IDIOM.search(text)
        assert m, f"{f.relative_to(REPO)} imports gmot without the repository-first idiom"
        assert f.resolve().parents[int(m.group(1))] == REPO, f"{f}: parents[{m.group(1)}]"
        first_gmot = re.search(r"^\s*(from|import) gmot\b", text, re.M)
        assert m.start() < first_gmot.start(), f"{f}: gmot is imported before the idiom"


@pytest.mark.parametrize(
    "script",
    [
        "egs/hsk/ASR/zipformer_gmot/train.py",
        "egs/hsk/ASR/local/synth_hsk_corpus.py",  # through the recipe's local -> ../../../local
        "tools/check_audio_use.py",
    ],
)
def test_entry_script_ignores_a_decoy_gmot_on_pythonpath(tmp_path: Path, script: str) -> None:
    decoy = tmp_path / "decoy"
    (decoy / "gmot").mkdir(parents=True)
    (decoy / "gmot" / "__init__.py").write_text("raise RuntimeError('decoy gmot imported')\n")
    env = dict(os.environ, PYTHONPATH=str(decoy), OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, str(REPO / script), "--help"],
        cwd=tmp_path,  # not the repository: only the script's own idiom can find this gmot
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "decoy" not in r.stderr, r.stderr[-2000:]


def test_aishell_prepare_stage0_ignores_a_decoy_gmot(tmp_path: Path) -> None:
    """aishell prepare.sh's stage-0 `python -c` snippet imports the recipe's clone's gmot."""
    decoy = tmp_path / "decoy"
    (decoy / "gmot").mkdir(parents=True)
    (decoy / "gmot" / "__init__.py").write_text("raise RuntimeError('decoy gmot imported')\n")
    corpus = tmp_path / "corpus"
    for split in ("train", "dev", "test"):
        (corpus / "data_aishell" / "wav" / split).mkdir(parents=True)
    (corpus / "data_aishell" / "transcript").mkdir()
    (corpus / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt").write_text("")
    recipe = tmp_path / "aishell" / "ASR"  # a scratch copy: prepare.sh makes data/ where it is
    recipe.mkdir(parents=True)
    shutil.copy(REPO / "egs" / "aishell" / "ASR" / "prepare.sh", recipe)
    (recipe / "local").symlink_to(REPO / "local")
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(decoy), OMP_NUM_THREADS="1")
    r = subprocess.run(
        ["bash", str(recipe / "prepare.sh"), "--dl-dir", str(corpus), "--stop-stage", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "layout OK" in r.stdout + r.stderr, r.stderr[-2000:]
