"""Stage 1 of prepare.sh is a per-recipe hook (issue 22): the recipe names its corpus layout
(``corpus_layout``, default ``aishell``), a layout is one module (gmot.data.layouts), and the
aishell layout's marker line is the one the shell computed before, so existing markers match."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_prepare_sh import REPO, _make_aishell, _read_cuts

from gmot.data.layouts import available, get_layout

# A corpus in another layout: one "<utt> <text>" line per wav in <corpus_dir>/<split>.txt next
# to <corpus_dir>/<split>/<utt>.wav (speaker = the utterance id's first 4 characters).
FLAT_LAYOUT = """
from pathlib import Path

from lhotse import Recording, SupervisionSegment

from gmot.data.manifests import write_split_cuts


def prepare_cuts(corpus_dir, out_dir, corpus, splits):
    counts = {}
    for split in splits:
        recs, sups = [], []
        for line in (Path(corpus_dir) / f"{split}.txt").read_text(encoding="utf-8").splitlines():
            utt, text = line.split(maxsplit=1)
            rec = Recording.from_file(Path(corpus_dir) / split / f"{utt}.wav")
            recs.append(rec)
            sups.append(SupervisionSegment(id=utt, recording_id=rec.id, start=0.0,
                                           duration=rec.duration, speaker=utt[:4], text=text))
        counts[split] = write_split_cuts(recs, sups, out_dir, corpus, split)
    return counts


def inputs(corpus_dir):
    return "wavs=" + str(len(list(Path(corpus_dir).rglob("*.wav"))))
"""


def _flat_corpus(aishell_root: Path, root: Path) -> dict[str, str]:
    """The readable utterances of a tiny AISHELL copy, rewritten in the flat layout."""
    texts = {}
    t = aishell_root / "data_aishell/transcript/aishell_transcript_v0.8.txt"
    lines = dict(
        ln.split(maxsplit=1) for ln in t.read_text(encoding="utf-8").splitlines() if " " in ln
    )
    for split in ("train", "dev", "test"):
        (root / split).mkdir(parents=True)
        out = []
        for wav in sorted((aishell_root / "data_aishell/wav" / split).rglob("*.wav")):
            if wav.stem in lines and wav.stat().st_size > 100:
                (root / split / wav.name).write_bytes(wav.read_bytes())
                out.append(f"{wav.stem} {lines[wav.stem].replace(' ', '')}")
                texts[wav.stem] = lines[wav.stem].replace(" ", "")
        (root / f"{split}.txt").write_text("\n".join(out) + "\n", encoding="utf-8")
    return texts


def test_registry_finds_modules_and_files(tmp_path):
    assert "aishell" in available()
    aishell = get_layout("aishell")
    assert callable(aishell.prepare_cuts) and callable(aishell.inputs)
    with pytest.raises(ValueError, match="unknown corpus layout 'nope'.*aishell"):
        get_layout("nope")
    (tmp_path / "flat.py").write_text(FLAT_LAYOUT)
    assert get_layout(str(tmp_path / "flat.py")).inputs(tmp_path) == "wavs=0"
    (tmp_path / "half.py").write_text("def inputs(d):\n    return ''\n")
    with pytest.raises(ValueError, match="does not define prepare_cuts"):
        get_layout(str(tmp_path / "half.py"))


def test_aishell_inputs_match_the_shell(tmp_path):
    """The line prepare.sh recorded (find | wc -l, md5sum) before stage 1 became a hook."""
    root = tmp_path / "corpus"
    _make_aishell(root)
    (root / "data_aishell/wav/train/S0002/link.wav").symlink_to(root / "data_aishell/wav/dev")
    shell = (
        'nwav=$(find "$1/data_aishell/wav" -name "*.wav" 2>/dev/null | wc -l || true); '
        't="$1/data_aishell/transcript/aishell_transcript_v0.8.txt"; '
        'if [ -f "$t" ]; then f="$(basename "$t"):$(md5sum < "$t" | cut -c1-12)"; '
        'else f="$(basename "$t"):missing"; fi; echo "wavs=$nwav $f"'
    )
    aishell = get_layout("aishell")
    for corpus_dir in (root, tmp_path / "nothing"):
        old = subprocess.run(["bash", "-c", shell, "-", str(corpus_dir)], capture_output=True,
                             text=True, check=True).stdout.strip()  # fmt: skip
        assert aishell.inputs(corpus_dir) == old
    assert aishell.inputs(root).startswith("wavs=13 aishell_transcript_v0.8.txt:")


def test_a_recipe_with_another_layout_needs_no_library_edit(tmp_path):
    """A recipe whose corpus is in another layout names its layout file in prepare.sh; the
    shared stages do the rest (stage 1 with that layout, stage 2 from its cuts)."""
    texts = _flat_corpus(_aishell(tmp_path), tmp_path / "flat")
    d = tmp_path / "egs/toy/ASR"
    d.mkdir(parents=True)
    (d / "local").symlink_to(REPO / "local")
    (d / "flat_layout.py").write_text(FLAT_LAYOUT)
    (d / "prepare.sh").write_text(
        "set -eou pipefail\n"
        'cd "$(dirname "$0")"\n'
        "stage=1; stop_stage=2; force=false; corpus=toy; corpus_layout=flat_layout.py\n"
        f"corpus_dir={tmp_path / 'flat'}; bpe_vocab_size=0; compute_fbank=false\n"
        "musan_dir=none; plm_model=x; plm_layer=-1\n"
        ". local/prepare_common.sh\n"
        "mkdir -p data/manifests data/lang_char\n"
        "prepare_common_stages\n"
    )
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    r = subprocess.run(["bash", str(d / "prepare.sh")], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "flat_layout.py layout" in r.stdout
    cuts = _read_cuts(d / "data/manifests/toy_cuts_train.jsonl.gz")
    assert {c["id"]: c["supervisions"][0]["text"] for c in cuts} == {
        k: v for k, v in texts.items() if k.startswith("BAC009S000")
    }
    assert (d / "data/manifests/.toy.done").read_text().split()[2] == f"wavs={len(texts)}"
    assert (d / "data/lang_char/tokens.txt").is_file()
    again = subprocess.run(["bash", str(d / "prepare.sh")], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count("exists, skipping") == 2, again.stdout


def _aishell(tmp_path: Path) -> Path:
    root = tmp_path / "aishell"
    _make_aishell(root)
    return root
