"""Streaming ONNX export (issue 23): the one-chunk encoder graph with states equals
``Zipformer.streaming_forward`` chunk after chunk (batch 1 and 3); onnxruntime streaming search
equals the torch streaming search; export.py --streaming 1 -> pretrained.py --streaming 1 and
onnx_pretrained.py print the same partial and final results; the error cases."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

sys.path.insert(0, str(Path(__file__).parents[1] / "decoding"))
from test_decode_main import TOKENS  # noqa: E402
from test_streaming_decode import _calibrated_model, _causal_config  # noqa: E402

from gmot.decoding.streaming import decode_streams  # noqa: E402
from gmot.export import OnnxStreamingTransducer, export_streaming_transducer_onnx  # noqa: E402
from gmot.export.onnx_streaming import encoder_metadata, is_streaming_export  # noqa: E402

LENS = [77, 110, 173]  # fbank frames; chunk_shift is 32: none is a multiple of it


@pytest.fixture(scope="module")
def model():
    return _calibrated_model(_causal_config())  # chunk 16, left context 32, vocab 12


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    paths = export_streaming_transducer_onnx(model, tmp_path_factory.mktemp("onnx"), "s")
    return paths, OnnxStreamingTransducer(paths["encoder"], paths["decoder"], paths["joiner"])


def test_metadata(model, exported):
    paths, _ = exported
    meta = encoder_metadata(paths["encoder"])
    enc = model.encoder
    states = enc.get_init_states(1, "cpu")
    assert is_streaming_export(paths["encoder"])
    decoder_meta = encoder_metadata(paths["decoder"])  # the common keys, no state shapes
    assert decoder_meta["streaming"] == "1" and "state_shapes" not in decoder_meta
    expected = {"streaming": "1", "chunk_size": "16", "left_context_frames": "32",
                "chunk_shift": str(enc.chunk_shift), "right_padding": "13",
                "chunk_input_frames": str(enc.chunk_input_frames), "num_features": "80",
                "num_states": str(len(states)), "vocab_size": "12", "context_size": "2",
                "blank_id": "0"}  # fmt: skip
    assert {k: meta[k] for k in expected} == expected
    assert json.loads(meta["state_shapes"]) == [list(s.shape) for s in states]
    assert json.loads(meta["state_dtypes"])[-2:] == ["float32", "int64"]


@pytest.mark.parametrize("batch", [1, 3])
def test_encoder_chunks_equal_torch(model, exported, batch):
    """Five consecutive chunks (the last one short for one stream): outputs, lengths and new
    states of the ONNX graph equal streaming_forward's (states fed back from each side)."""
    _, ort_model = exported
    enc = model.encoder
    n = enc.chunk_input_frames
    states = enc.get_init_states(batch, "cpu")
    ort_states = ort_model.encoder.get_init_states(batch)
    assert [s.shape for s in ort_states] == [s.shape for s in states]
    g = torch.Generator().manual_seed(batch)
    for c in range(5):
        x = torch.randn(batch, n, 80, generator=g)
        x_lens = torch.full((batch,), n, dtype=torch.int64)
        x_lens[-1] = 20 if c == 4 else n
        with torch.no_grad():
            out, out_lens, states = enc.streaming_forward(x, x_lens, states)
            out = model.joiner.encoder_proj(out)
        got, got_lens, ort_states = ort_model.encoder.streaming_forward(x, x_lens, ort_states)
        # atol 3e-4: the calibrated projection subtracts a large mean (float32 cancellation
        # amplifies the ~1e-6 encoder differences about 100 times); the states are raw.
        np.testing.assert_allclose(got.numpy(), out.numpy(), rtol=1e-4, atol=3e-4)
        assert torch.equal(got_lens, out_lens), (c, got_lens, out_lens)
        assert len(ort_states) == len(states)
        for i, (a, b) in enumerate(zip(ort_states, states)):
            assert a.dtype == b.dtype, (i, a.dtype, b.dtype)
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-5, err_msg=f"state {i}")


@pytest.mark.parametrize("method", ["greedy_search", "modified_beam_search"])
def test_onnx_streaming_search_equals_torch(model, exported, method):
    _, ort_model = exported
    g = torch.Generator().manual_seed(7)
    feats = [torch.randn(n, 80, generator=g) for n in LENS]
    expected = dict(decode_streams(model, enumerate(feats), method, num_decode_streams=3))
    assert all(expected.values()), expected  # the calibrated joiner emits tokens
    for n_streams in (1, 3):
        got = dict(decode_streams(ort_model, enumerate(feats), method, n_streams))
        assert got == expected, (n_streams, got, expected)


def test_non_streaming_export(tmp_path):
    """A whole-utterance export is refused by the streaming runner, and OnnxSearchModel runs
    the torch modified beam search on its graphs (onnx_pretrained.py's non-streaming path)."""
    from gmot.decoding import modified_beam_search
    from gmot.export import OnnxSearchModel, OnnxTransducer, export_transducer_onnx

    plain = _calibrated_model(_causal_config(causal=False, chunk_size=(-1,),
                                             left_context_frames=(-1,)))  # fmt: skip
    paths = export_transducer_onnx(plain, tmp_path, "plain")
    assert not is_streaming_export(paths["encoder"])
    with pytest.raises(ValueError, match=r"encoder-plain\.onnx is not a streaming.*--streaming 1"):
        OnnxStreamingTransducer(paths["encoder"], paths["decoder"], paths["joiner"])
    x = torch.randn(2, 120, 80, generator=torch.Generator().manual_seed(3))
    x_lens = torch.tensor([120, 95])
    with torch.no_grad():
        enc, enc_lens = plain.forward_encoder(x, x_lens)
    expected = modified_beam_search(plain, enc, enc_lens, beam=4)
    assert all(expected), expected
    search = OnnxSearchModel(OnnxTransducer(paths["encoder"], paths["decoder"], paths["joiner"]))
    ort_enc, ort_lens = search.onnx.run_encoder(x.numpy(), x_lens.numpy())
    got = modified_beam_search(search, torch.from_numpy(ort_enc), torch.from_numpy(ort_lens), 4)
    assert got == expected


# ------------------------------------------------------------------------------ the scripts
def _checkpoint(tmp_path, cfg: dict, name: str) -> Path:
    from gmot.checkpoint import save_checkpoint

    path = tmp_path / "ckpt" / name
    save_checkpoint(path, model=_calibrated_model(cfg), params={"batch_idx_train": 1},
                    model_config=cfg)  # fmt: skip
    return path


@pytest.fixture
def lang(tmp_path):
    d = tmp_path / "lang"
    d.mkdir()
    (d / "tokens.txt").write_text(TOKENS, encoding="utf-8")
    return d


def test_export_refuses_non_causal_checkpoint(tmp_path, lang):
    from gmot.export import export_main

    cfg = _causal_config(7, causal=False, chunk_size=(-1,), left_context_frames=(-1,))
    ckpt = _checkpoint(tmp_path, cfg, "plain.pt")
    exp = tmp_path / "exp"
    argv = ["--checkpoint", str(ckpt), "--exp-dir", str(exp), "--lang-dir", str(lang)]
    with pytest.raises(ValueError, match=r"--streaming 1 needs a causal.*plain\.pt holds a non"):
        export_main.main(argv + ["--streaming", "1"])
    assert not exp.exists()  # refused before writing anything


def test_export_then_streaming_pretrained_torch_and_onnx(tmp_path, lang, capsys):
    """export.py --streaming 1 names the chunk in the files; pretrained.py --streaming 1 (torch)
    and onnx_pretrained.py on the export print the same partial lines and final texts."""
    from gmot.decoding import pretrained_main
    from gmot.export import export_main, onnx_pretrained_main

    ckpt = _checkpoint(tmp_path, _causal_config(7, chunk_size=(16, 32)), "causal.pt")
    exp = tmp_path / "exp"
    flags = ["--chunk-size", "32", "--left-context-frames", "32"]
    written = export_main.main(["--checkpoint", str(ckpt), "--exp-dir", str(exp),
                                "--lang-dir", str(lang), "--streaming", "1"] + flags)  # fmt: skip
    assert written["encoder"].name == "encoder-causal-streaming-chunk-32-left-32.onnx"
    assert encoder_metadata(written["encoder"])["chunk_size"] == "32"
    rng = np.random.default_rng(0)
    wavs = []
    for i, seconds in enumerate([0.05, 0.9, 1.77]):  # the first is too short to decode
        wavs.append(tmp_path / f"w{i}.wav")
        sf.write(wavs[-1], (rng.standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32),
                 16000)  # fmt: skip
    capsys.readouterr()
    texts = pretrained_main.main(["--checkpoint", str(ckpt), "--tokens", str(lang / "tokens.txt"),
                                  "--device", "cpu", "--streaming", "1", *flags,
                                  *map(str, wavs)])  # fmt: skip
    torch_out = capsys.readouterr().out.splitlines()
    assert texts[0] is None and all(texts[1:]), texts
    assert torch_out[0] == f"{wavs[0]}: [skipped: too short to decode]"
    assert torch_out[-1] == f"{wavs[2]}: {texts[2]}"
    partials = [line for line in torch_out if line.startswith(f"{wavs[2]} [partial ")]
    assert len(partials) >= 2, torch_out  # the hypothesis grows chunk by chunk
    assert partials[-1].endswith(f"]: {texts[2]}")

    onnx_texts = onnx_pretrained_main.main(["--onnx-dir", str(exp), *map(str, wavs)])
    assert onnx_texts == texts
    assert capsys.readouterr().out.splitlines() == torch_out

    with pytest.raises(ValueError, match="--streaming 1 decodes with greedy_search or modified"):
        pretrained_main.main(["--checkpoint", str(ckpt), "--streaming", "1",
                              "--decoding-method", "ctc_greedy_search", str(wavs[1])])  # fmt: skip
