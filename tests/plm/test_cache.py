"""PLM target cache: lhotse round trip, skipped cuts, the compute_plm_targets CLI."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

from gmot.plm import PLMTeacher, compute_and_store, cut_text, load
from gmot.plm.compute_targets import main as compute_main

TEXTS = ["今天 天气 很好", "我们一起去北京大学学习汉语", "中国人", "", "好"]


def make_cuts(root, texts=TEXTS, prefix="utt") -> CutSet:
    """Tiny 16 kHz recordings (0.2 s of noise each) with the given transcripts."""
    rng = np.random.default_rng(0)
    recs, sups = [], []
    for i, text in enumerate(texts):
        path = root / f"{prefix}{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(3200)).astype(np.float32), 16000)
        rec = Recording.from_file(path, recording_id=f"{prefix}{i}")
        recs.append(rec)
        sups.append(
            SupervisionSegment(
                id=f"{prefix}{i}", recording_id=rec.id, start=0.0, duration=rec.duration, text=text
            )
        )
    return CutSet.from_manifests(
        recordings=RecordingSet.from_recordings(recs),
        supervisions=SupervisionSet.from_segments(sups),
    )


@pytest.fixture(scope="module")
def teacher(tiny_bert_dir) -> PLMTeacher:
    return PLMTeacher(tiny_bert_dir, layer=1)


def test_round_trip_numpy_files(tmp_path, teacher, caplog) -> None:
    cuts = make_cuts(tmp_path)
    with caplog.at_level(logging.WARNING):
        out, stats = compute_and_store(
            cuts, teacher, tmp_path / "feats", batch_size=2, progress=False
        )
    assert (
        "skipped 1 of 5" in caplog.text and "utt3-3: empty transcript" in caplog.text
    )  # the empty transcript
    assert stats["num_cuts"] == 4 and stats["num_skipped"] == 1
    assert stats["num_tokens"] == 6 + 13 + 3 + 1
    manifest = tmp_path / "cuts.jsonl.gz"
    out.to_file(manifest)
    back = CutSet.from_file(manifest)
    assert [c.id for c in back] == [c.id for c in cuts if c.supervisions[0].text]
    assert len(back) == 4
    for cut in back:
        text = cut_text(cut)
        assert " " not in text
        ref, ref_lens, ref_toks = teacher.encode([text])
        feats = cut.load_custom("plm_feats")  # what the data module calls
        assert feats.dtype == np.float32 and feats.shape == (int(ref_lens[0]), 32)
        np.testing.assert_allclose(feats, ref[0].numpy(), atol=1e-5)
        assert cut.custom["plm_tokens"] == ref_toks[0]
        f2, t2 = load(cut)
        assert np.array_equal(f2, feats) and t2 == ref_toks[0]


def test_lilcom_storage_is_close(tmp_path, teacher) -> None:
    cuts = make_cuts(tmp_path, texts=["今天天气很好", "我们"])
    out, _ = compute_and_store(
        cuts, teacher, tmp_path / "feats", storage_type="lilcom_chunky", progress=False
    )
    for cut in out:
        ref, _, _ = teacher.encode([cut_text(cut)])
        got = cut.load_custom("plm_feats")
        np.testing.assert_allclose(got, ref[0].numpy(), atol=0.05)


def test_load_without_targets_is_clear(tmp_path) -> None:
    cut = next(iter(make_cuts(tmp_path, texts=["好"])))
    with pytest.raises(KeyError, match="has no 'plm_feats'"):
        load(cut)


def test_cli_rerunnable(tmp_path, tiny_bert_dir, caplog) -> None:
    mdir, odir = tmp_path / "manifests", tmp_path / "plm"
    mdir.mkdir()
    for split, texts in {"train": TEXTS, "dev": ["中国人"], "test": ["好", "大学"]}.items():
        make_cuts(tmp_path, texts=texts, prefix=split).to_file(mdir / f"toy_cuts_{split}.jsonl.gz")
    args = ["--corpus", "toy", "--manifest-dir", str(mdir), "--output-dir", str(odir)]
    args += ["--plm-model", str(tiny_bert_dir), "--layer", "-1", "--batch-size", "2"]
    assert compute_main(args) == 0
    info = json.loads((odir / "toy_plm_info.json").read_text())
    assert info["dim"] == 32 and info["layer"] == -1 and info["splits"]["train"]["num_cuts"] == 4
    test_cuts = CutSet.from_file(odir / "toy_cuts_test.jsonl.gz")
    assert [c.custom["plm_tokens"] for c in test_cuts] == [["好"], ["大", "学"]]
    mtime = (odir / "toy_cuts_dev.jsonl.gz").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        assert compute_main(args) == 0  # everything exists: skipped
    assert "skipping" in caplog.text
    assert (odir / "toy_cuts_dev.jsonl.gz").stat().st_mtime_ns == mtime
    assert compute_main([*args, "--force", "--splits", "dev", "--expand-to-chars"]) == 0
    dev = next(iter(CutSet.from_file(odir / "toy_cuts_dev.jsonl.gz")))
    assert dev.custom["plm_tokens"] == ["中", "国", "人"]
    assert torch.from_numpy(dev.load_custom("plm_feats")).shape == (3, 32)
    with pytest.raises(SystemExit, match="missing manifest"):
        compute_main([*args, "--corpus", "nothere"])


def test_untokenisable_text_is_skipped_by_name(tmp_path, teacher, caplog) -> None:
    cuts = make_cuts(tmp_path, texts=["好", "\u200b", "中国"])  # zero-width space: no tokens
    with caplog.at_level(logging.WARNING):
        out, stats = compute_and_store(cuts, teacher, tmp_path / "f", batch_size=8, progress=False)
    assert stats["num_skipped"] == 1 and [c.custom["plm_tokens"] for c in out] == [
        ["好"],
        ["中", "国"],
    ]
    assert "utt1-1" in caplog.text and "no PLM tokens" in caplog.text
