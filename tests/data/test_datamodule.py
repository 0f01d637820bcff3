import argparse
import json
import logging

import numpy as np
import pytest
import torch

from gmot.data.datamodule import AsrDataModule
from gmot.data.filters import CutFilter, frames_after_subsampling
from gmot.data.layouts.aishell import prepare_aishell_cuts
from gmot.data.tokens import TokenTable


@pytest.fixture(scope="module")
def prepared(tiny_hsk, tmp_path_factory):
    root, _ = tiny_hsk
    out = tmp_path_factory.mktemp("prep")
    prepare_aishell_cuts(root, out / "manifests", "hsk")
    from lhotse import load_manifest

    train = load_manifest(out / "manifests" / "hsk_cuts_train.jsonl.gz")
    texts = [c.supervisions[0].text for c in train]
    TokenTable.build(texts).save(out / "lang_char" / "tokens.txt")
    return out


def make_args(prepared, **kw):
    p = argparse.ArgumentParser()
    AsrDataModule.add_arguments(p)
    a = p.parse_args(
        [
            "--corpus",
            "hsk",
            "--manifest-dir",
            str(prepared / "manifests"),
            "--lang-dir",
            str(prepared / "lang_char"),
            "--max-duration",
            "8",
            "--num-workers",
            "0",
            "--num-buckets",
            "2",
            "--min-utt-duration",
            "0.5",
        ]
    )
    for k, v in kw.items():
        setattr(a, k, v)
    return a


def collect(dl):
    return [b for b in dl]


def test_batches_shapes_and_tokens(prepared):
    dm = AsrDataModule(make_args(prepared, drop_last=False, enable_spec_aug=False))
    batches = collect(dm.train_dataloader(dm.train_cuts()))
    ids = [i for b in batches for i in b["cut_ids"]]
    assert sorted(ids) == sorted(c.id for c in dm.train_cuts())  # every train cut once
    for b in batches:
        B = len(b["cut_ids"])
        x, lens = b["features"], b["feature_lens"]
        assert x.dtype == torch.float32 and x.shape[0] == B and x.shape[2] == 80
        assert lens.dtype == torch.int64 and int(lens.max()) == x.shape[1]
        assert len(b["token_ids"]) == len(b["texts"]) == B
        for t, ids_, n in zip(b["texts"], b["token_ids"], lens.tolist()):
            assert dm.tokens.decode(ids_) == t
            assert 0.95 * n / 100 < 10  # frames at 100 Hz
        assert "plm_feats" not in b
    # features equal lhotse's own on-the-fly fbank for an unaugmented cut
    from lhotse import Fbank, FbankConfig

    c = next(iter(dm.train_cuts()))
    ref = c.compute_features(Fbank(FbankConfig(num_mel_bins=80)))
    b = next(b for b in batches if c.id in b["cut_ids"])
    i = b["cut_ids"].index(c.id)
    np.testing.assert_allclose(b["features"][i, : ref.shape[0]].numpy(), ref, atol=1e-3)


def test_deterministic_and_resume(prepared):
    args = make_args(prepared, speed_perturb=True, max_duration=5.0)
    dm = AsrDataModule(args)
    torch.manual_seed(0)
    a = collect(dm.train_dataloader(dm.train_cuts()))
    torch.manual_seed(123)  # global RNG must not matter
    b = collect(dm.train_dataloader(dm.train_cuts()))
    assert len(a) >= 3
    for x, y in zip(a, b):
        assert x["cut_ids"] == y["cut_ids"]
        assert torch.equal(x["features"], y["features"])
    # resume: consume 2 batches, save sampler state, a new loader yields the rest identically
    dl = dm.train_dataloader(dm.train_cuts())
    it = iter(dl)
    next(it), next(it)
    state = dl.sampler.state_dict()
    rest = collect(AsrDataModule(args).train_dataloader(dm.train_cuts(), sampler_state_dict=state))
    assert [r["cut_ids"] for r in rest] == [r["cut_ids"] for r in a[2:]]
    assert all(torch.equal(r["features"], s["features"]) for r, s in zip(rest, a[2:]))


def test_workers_match_single_process(prepared):
    a = collect(
        AsrDataModule(make_args(prepared)).train_dataloader(
            AsrDataModule(make_args(prepared)).train_cuts()
        )
    )
    dm = AsrDataModule(make_args(prepared, num_workers=2))
    b = collect(dm.train_dataloader(dm.train_cuts()))
    assert [x["cut_ids"] for x in a] == [x["cut_ids"] for x in b]
    assert all(torch.equal(x["features"], y["features"]) for x, y in zip(a, b))


def test_plm_targets_batched(prepared, tmp_path):
    from lhotse import CutSet, NumpyFilesWriter

    dm = AsrDataModule(make_args(prepared, enable_spec_aug=False, drop_last=False, oov="unk"))
    cuts = list(dm.dev_cuts())
    with NumpyFilesWriter(tmp_path) as w:
        for k, c in enumerate(cuts):
            arr = np.full((k + 2, 6), k + 1, dtype=np.float32)
            c.plm_feats = w.store_array(c.id, arr)
            c.custom["plm_tokens"] = [f"t{j}" for j in range(k + 2)]
    b = collect(dm.valid_dataloader(CutSet.from_cuts(cuts)))[0]
    assert b["plm_feats"].shape == (len(cuts), len(cuts) + 1, 6)
    for i, cid in enumerate(b["cut_ids"]):
        k = [c.id for c in cuts].index(cid)
        assert b["plm_lens"][i] == k + 2 and b["plm_tokens"][i] == [f"t{j}" for j in range(k + 2)]
        assert torch.all(b["plm_feats"][i, : k + 2] == k + 1) and torch.all(
            b["plm_feats"][i, k + 2 :] == 0
        )


def test_bad_inputs_reported_and_skipped(prepared, tmp_path, caplog):
    from lhotse import CutSet

    dm = AsrDataModule(make_args(prepared, enable_spec_aug=False, drop_last=False))
    good = list(dm.train_cuts())
    oov = good[0].with_id("oov")
    from dataclasses import replace

    oov.supervisions = [
        replace(good[0].supervisions[0], id="oov", text="龘" + good[0].supervisions[0].text)
    ]
    empty = good[1].with_id("empty")
    empty.supervisions = [replace(good[1].supervisions[0], id="empty", text="")]
    short = good[2].with_id("short")  # 1.0 s but 60 characters: T'=23 < 60
    short.supervisions = [
        replace(good[2].supervisions[0], id="short", text=good[2].supervisions[0].text[0] * 60)
    ]
    short = short.truncate(duration=1.0)
    bad_wav = tmp_path / "corrupt.wav"
    bad_wav.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk")
    corrupt = good[3].with_id("corrupt")
    corrupt.recording = replace(
        corrupt.recording, sources=[replace(corrupt.recording.sources[0], source=str(bad_wav))]
    )
    cuts = CutSet.from_cuts(good[4:] + [oov, empty, short, corrupt])
    with caplog.at_level(logging.WARNING):
        batches = collect(dm.train_dataloader(cuts))
    ids = {i for b in batches for i in b["cut_ids"]}
    assert ids == {c.id for c in good[4:]}
    summary = dm.report_filters()["train"]
    assert "characters not in token table: 1" in summary and "oov" in summary
    assert "empty transcript: 1" in summary and "too short for its tokens (T' < U): 1" in summary
    log = caplog.text
    assert "corrupt" in log and "unreadable" in log


def test_filter_by_duration_not_frames():
    assert frames_after_subsampling(1.0) == ((100 - 7) // 2 + 1) // 2 == 23
    f = CutFilter(None, min_duration=1.0, max_duration=12.0)

    class C:
        id = "x"
        duration = 0.5
        supervisions = []

    assert f.reason(C()).startswith("duration")


def test_length_filter_follows_the_encoder_config():
    """The data module reads --encoder-config (a name, a dict, or its JSON) to count frames: a
    2.0 s cut with 45 characters has 48 output frames from the published Zipformer, 46 with
    time_pool 2 and output factor 1, 23 with time_pool 2 and factor 2."""
    from gmot.data.datamodule import _encoder_subsampling

    assert _encoder_subsampling(None) == _encoder_subsampling("tiny") == (1, 2)
    spec = {"base": "tiny", "time_pool": 2, "output_downsampling_factor": 1}
    assert _encoder_subsampling(spec) == _encoder_subsampling(json.dumps(spec)) == (2, 1)

    class C:
        id = "x"
        duration = 2.0
        supervisions = [type("S", (), {"text": "我" * 45})()]

    plain = CutFilter(None)
    pooled = CutFilter(None, time_pool=2, output_downsampling_factor=1)
    coarse = CutFilter(None, time_pool=2, output_downsampling_factor=2)
    assert plain.reason(C()) is None and pooled.reason(C()) is None
    assert coarse.reason(C()) == "too short for its tokens (T' < U)"
    C.supervisions = [type("S", (), {"text": "我" * 47})()]
    assert plain.reason(C()) is None and pooled.reason(C()).startswith("too short")


def test_missing_manifest_names_path(tmp_path):
    p = argparse.ArgumentParser()
    AsrDataModule.add_arguments(p)
    dirs = ["--manifest-dir", str(tmp_path), "--lang-dir", str(tmp_path)]
    dm = AsrDataModule(p.parse_args(["--corpus", "hsk", *dirs]))
    with pytest.raises(FileNotFoundError, match="hsk_cuts_train.jsonl.gz.*prepare.sh"):
        dm.train_cuts()
    # the library has no corpus of its own: without --corpus it says so
    with pytest.raises(ValueError, match="--corpus is not set"):
        AsrDataModule(p.parse_args(dirs)).train_cuts()


def test_freq_warp_changes_training_features_only(prepared):
    """--freq-warp warps the training batches (deterministically per batch) and leaves the
    feature frames' padding, the batch order and the test loader alone."""
    plain = AsrDataModule(make_args(prepared, enable_spec_aug=False, drop_last=False))
    warped = AsrDataModule(
        make_args(prepared, enable_spec_aug=False, drop_last=False, freq_warp=0.15)
    )
    a = collect(plain.train_dataloader(plain.train_cuts()))
    b = collect(warped.train_dataloader(warped.train_cuts()))
    b2 = collect(warped.train_dataloader(warped.train_cuts()))
    assert [x["cut_ids"] for x in a] == [x["cut_ids"] for x in b]
    for x, y, y2 in zip(a, b, b2):
        assert torch.equal(y["features"], y2["features"])  # seeded per batch
        assert not torch.allclose(x["features"], y["features"])
        # each frame keeps its overall level: warping moves energy between bins, not in time
        n = int(x["feature_lens"][0])
        diff = (x["features"][0, :n].mean(-1) - y["features"][0, :n].mean(-1)).abs()
        assert float(diff.mean()) < 0.5
    t1 = collect(plain.test_dataloader(plain.test_cuts()))
    t2 = collect(warped.test_dataloader(warped.test_cuts()))
    assert len(t1) == len(t2) > 0
    assert all(torch.equal(x["features"], y["features"]) for x, y in zip(t1, t2))


def test_pitch_appends_three_columns_and_precomputed_width_is_checked(prepared, tmp_path):
    """--pitch 1: 83 features per frame whose first 80 are the plain fbank; precomputed
    features of another width stop with the cut's id instead of being skipped as unreadable."""
    from lhotse import LilcomChunkyWriter

    from gmot.data.pitch import pitch_features

    plain = AsrDataModule(make_args(prepared, enable_spec_aug=False))
    pitched = AsrDataModule(make_args(prepared, enable_spec_aug=False, pitch=True))
    assert (plain.num_features, pitched.num_features) == (80, 83)
    a = collect(plain.test_dataloader(plain.test_cuts()))
    b = collect(pitched.test_dataloader(pitched.test_cuts()))
    cut = next(iter(pitched.test_cuts()))
    for x, y in zip(a, b):
        assert y["features"].shape == (*x["features"].shape[:2], 83)
        assert torch.equal(x["feature_lens"], y["feature_lens"])
        for i, n in enumerate(x["feature_lens"].tolist()):
            assert torch.allclose(x["features"][i, :n], y["features"][i, :n, :80], atol=1e-5)
    # the first test cut's pitch columns are pitch_features of its audio
    i = b[0]["cut_ids"].index(cut.id)
    n = int(b[0]["feature_lens"][i])
    expected = pitch_features(cut.load_audio()[0], cut.sampling_rate, n)
    np.testing.assert_allclose(b[0]["features"][i, :n, 80:].numpy(), expected, atol=1e-5)

    # fbank precomputed without pitch, read by a --pitch 1 data module: a clear error
    from lhotse import Fbank, FbankConfig

    cuts = pitched.test_cuts().subset(first=2).to_eager()
    cuts = cuts.compute_and_store_features(
        Fbank(FbankConfig(num_mel_bins=80)), tmp_path / "feats", storage_type=LilcomChunkyWriter
    )
    args = make_args(prepared, enable_spec_aug=False, pitch=True, on_the_fly_feats=False)
    dm = AsrDataModule(args)
    with pytest.raises(ValueError, match=f"cut {cuts[0].id}: features of shape .*, 80\\)"):
        collect(dm.test_dataloader(cuts))
