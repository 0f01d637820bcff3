"""Audio too short for the encoder (issue 21 point 4) is skipped with the cut/file named and
counted, by decode.py, pretrained.py and the ONNX command (point 7), on a real tiny model; a
failed decode leaves no earlier run's result files behind."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import gmot.decoding.decode_main as decode_main
from gmot.decoding import pretrained_main

SYMS = ["<blk>", "<sos/eos>", "<unk>"] + list("你好世界我爱北京天气")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    from gmot.checkpoint import save_checkpoint
    from gmot.models.asr_model import build_model

    tmp = tmp_path_factory.mktemp("short")
    lang = tmp / "lang"
    lang.mkdir()
    (lang / "tokens.txt").write_text("".join(f"{s} {i}\n" for i, s in enumerate(SYMS)))
    torch.manual_seed(0)
    cfg = {"vocab_size": len(SYMS), "encoder": "tiny", "context_size": 2, "decoder_dim": 32,
           "joiner_dim": 32}  # fmt: skip
    model = build_model(cfg)
    ckpt = tmp / "exp" / "epoch-1.pt"
    save_checkpoint(ckpt, model=model, params={"batch_idx_train": 1}, model_config=cfg)
    rng = np.random.default_rng(0)
    wavs = {}
    for name, dur in (("a", 0.8), ("tiny", 0.05), ("b", 0.6)):
        wavs[name] = tmp / f"{name}.wav"
        sf.write(
            wavs[name], (rng.standard_normal(int(16000 * dur)) * 0.1).astype(np.float32), 16000
        )
    manifests = {}
    for split, names in (("dev", ["a"]), ("test", ["a", "tiny", "b"])):
        recs = [Recording.from_file(wavs[n], recording_id=f"{split}-{n}") for n in names]
        sups = [SupervisionSegment(r.id, r.id, 0.0, r.duration, text="你好") for r in recs]
        cuts = CutSet.from_manifests(
            RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
        )
        manifests[split] = tmp / f"x_cuts_{split}.jsonl.gz"
        cuts.to_file(manifests[split])
    return {"tmp": tmp, "lang": lang, "ckpt": ckpt, "wavs": wavs, "cuts": manifests}


def _decode_argv(s: dict) -> list[str]:
    return ["--checkpoint", str(s["ckpt"]), "--lang-dir", str(s["lang"]), "--device", "cpu",
            "--exp-dir", str(s["tmp"] / "exp"), "--num-workers", "0",
            "--test-cuts", str(s["cuts"]["dev"]), str(s["cuts"]["test"])]  # fmt: skip


def test_decode_skips_short_cut_and_counts_it(setup, caplog):
    out = setup["tmp"] / "exp" / "greedy_search"
    out.mkdir(parents=True, exist_ok=True)
    stale = out / "wer-summary-test-epoch-1.txt"
    # an earlier run's row of this setting is replaced; another setting's row stays
    stale.write_text(
        "settings\tCER\ngreedy_search_max_sym_per_frame_1\t1.00\ngreedy_search_other\t2.00\n"
    )
    cers = decode_main.main(_decode_argv(setup))
    assert set(cers) == {"dev", "test"}
    summary = stale.read_text().splitlines()
    assert summary[0] == "settings\tCER"
    assert "greedy_search_other\t2.00" in summary
    assert f"greedy_search_max_sym_per_frame_1\t{cers['test']:.2f}" in summary
    assert "greedy_search_max_sym_per_frame_1\t1.00" not in summary
    assert summary[-1].startswith("# skipped 1 of 3 cuts")
    errs = (out / "errs-test-greedy_search_max_sym_per_frame_1-epoch-1.txt").read_text()
    assert "SKIPPED: 1 cut(s)" in errs and "cut test-tiny-1: 5 frames (0.05 s)" in errs
    recogs = (out / "recogs-test-greedy_search_max_sym_per_frame_1-epoch-1.txt").read_text()
    assert "test-a-0:" in recogs and "test-b-2:" in recogs and "test-tiny" not in recogs
    assert "skipping cut test-tiny-1" in caplog.text
    assert "1 of 3 cuts skipped as too short" in caplog.text


def test_failed_decode_leaves_no_stale_results(setup, monkeypatch):
    out = setup["tmp"] / "exp" / "modified_beam_search"
    out.mkdir(parents=True, exist_ok=True)
    setting = "modified_beam_search_beam_size_4"
    stale = [out / "wer-summary-test-epoch-1.txt", out / f"errs-test-{setting}-epoch-1.txt",
             out / f"recogs-test-{setting}-epoch-1.txt"]  # fmt: skip
    for p in stale:
        p.write_text("from an earlier run\n")
    real = decode_main.decode_dataset
    calls = []

    def dies_on_test(dl, *a):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("decoding test failed")
        return real(dl, *a)

    monkeypatch.setattr(decode_main, "decode_dataset", dies_on_test)
    with pytest.raises(RuntimeError, match="decoding test failed"):
        decode_main.main(_decode_argv(setup) + ["--decoding-method", "modified_beam_search"])
    assert (out / "wer-summary-dev-epoch-1.txt").is_file()  # dev was decoded and scored
    assert not any(p.exists() for p in stale)


def test_pretrained_and_onnx_skip_short_file(setup, capsys, caplog):
    pytest.importorskip("onnxruntime")
    from gmot.export import export_main, onnx_pretrained_main

    w = setup["wavs"]
    files = [str(w["a"]), str(w["tiny"]), str(w["b"])]
    common = ["--tokens", str(setup["lang"] / "tokens.txt")]
    texts = pretrained_main.main(
        ["--checkpoint", str(setup["ckpt"]), "--device", "cpu", *common, *files]
    )
    assert texts[1] is None and texts[0] is not None and texts[2] is not None
    out = capsys.readouterr().out.splitlines()
    assert out[1] == f"{w['tiny']}: [skipped: too short to decode]"
    assert f"{w['tiny']}: 5 frames (0.05 s), below the encoder's minimum of 9" in caplog.text
    alone = pretrained_main.main(
        ["--checkpoint", str(setup["ckpt"]), "--device", "cpu", *common, files[0], files[2]]
    )
    assert alone == [texts[0], texts[2]]

    onnx_dir = setup["tmp"] / "onnx"
    export_main.main(
        ["--checkpoint", str(setup["ckpt"]), "--exp-dir", str(onnx_dir),
         "--lang-dir", str(setup["lang"]), "--onnx", "1"]
    )  # fmt: skip
    capsys.readouterr()
    onnx_texts = onnx_pretrained_main.main(["--onnx-dir", str(onnx_dir), *files])
    assert onnx_texts == texts
    assert capsys.readouterr().out.splitlines()[1].endswith("[skipped: too short to decode]")


def test_onnx_dir_errors(tmp_path):
    from gmot.export.onnx_pretrained_main import find_onnx_files

    with pytest.raises(FileNotFoundError, match="found none"):
        find_onnx_files(tmp_path)
    for s in ("epoch-1-avg-1", "epoch-2-avg-1"):
        (tmp_path / f"encoder-{s}.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="--suffix"):
        find_onnx_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="decoder-epoch-1-avg-1.onnx"):
        find_onnx_files(tmp_path, "epoch-1-avg-1")
