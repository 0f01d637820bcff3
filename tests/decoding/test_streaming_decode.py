"""Streaming decoding (issue 23): chunk-by-chunk greedy and modified beam search on a causal
model equal the offline searches on its simulated-streaming encoder output; several streams
decoded together equal each alone; streaming_decode.py end to end; the error cases."""

from __future__ import annotations

import pytest
import torch
from test_decode_main import corpus  # noqa: F401  (the 3-cut manifest fixture)

import gmot.decoding.decode_main as decode_main
import gmot.decoding.streaming_decode_main as streaming_main
from gmot.decoding import greedy_search_batch, modified_beam_search
from gmot.decoding.streaming import DecodeStream, decode_one_chunk, decode_streams
from gmot.models.asr_model import build_model

# Fbank lengths: one under a chunk (32 fbank frames for chunk 16), (T - 7) // 2 = 16 and 48
# (one and three whole chunks), and two that are not multiples of the chunk.
LENS = [9, 40, 77, 103, 173]
METHODS = ["greedy_search", "modified_beam_search"]


def _causal_config(vocab_size: int = 12, **kw) -> dict:
    cfg = {"vocab_size": vocab_size, "encoder": "tiny", "context_size": 2, "decoder_dim": 32,
           "joiner_dim": 32, "causal": True, "chunk_size": (16,),
           "left_context_frames": (32,)}  # fmt: skip
    cfg.update(kw)
    return cfg


def _calibrated_model(cfg: dict, seed: int = 0) -> torch.nn.Module:
    """A random causal model whose transducer output depends on the frames: the random
    encoder's output varies by ~1 % from frame to frame, so the joiner's encoder projection is
    standardised on random input, and the blank logit lowered; random init emits only blanks."""
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, 200, 80, generator=g)
    with torch.no_grad():
        enc, lens = model.forward_encoder(x, torch.tensor([200, 150]))
        frames = torch.cat([enc[i, :n] for i, n in enumerate(lens.tolist())])
        mean, std = frames.mean(0), frames.std(0) + 1e-3
        proj = model.joiner.encoder_proj
        w = torch.randn(proj.weight.shape, generator=g) / std / frames.shape[1] ** 0.5
        proj.weight.copy_(w)
        proj.bias.copy_(-w @ mean)
        model.joiner.output_linear.weight.mul_(3)
        model.joiner.output_linear.bias[0] += 1.0
    return model


@pytest.fixture(scope="module")
def model():
    return _calibrated_model(_causal_config())


@pytest.fixture(scope="module")
def feats():
    g = torch.Generator().manual_seed(1)
    return [torch.randn(n, 80, generator=g) for n in LENS]


def _offline(model, feats, method, blank_penalty=0.0):
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, 80)
    with torch.no_grad():
        enc, enc_lens = model.forward_encoder(x, torch.tensor([f.shape[0] for f in feats]))
    if method == "greedy_search":
        return greedy_search_batch(model, enc, enc_lens, 1, blank_penalty)
    return modified_beam_search(model, enc, enc_lens, beam=4, blank_penalty=blank_penalty)


@pytest.mark.parametrize("method", METHODS)
def test_streaming_equals_offline_on_simulated_streaming(model, feats, method):
    expected = _offline(model, feats, method)
    assert all(expected[1:]) and len({tuple(h) for h in expected}) == len(expected), expected
    assert len(set(sum(expected, []))) >= 4, expected  # many tokens: the frames matter
    for n_streams in (1, 2, len(feats)):  # each alone, and batches of streams
        got = dict(decode_streams(model, enumerate(feats), method, num_decode_streams=n_streams))
        assert [got[i] for i in range(len(feats))] == expected, n_streams


@pytest.mark.parametrize("method", METHODS)
def test_streaming_blank_penalty_equals_offline(model, feats, method):
    expected = _offline(model, feats, method, blank_penalty=1.5)
    assert expected != _offline(model, feats, method)  # the penalty changes these hypotheses
    got = dict(decode_streams(model, enumerate(feats), method, 2, blank_penalty=1.5))
    assert [got[i] for i in range(len(feats))] == expected


@pytest.mark.parametrize("method", METHODS)
def test_features_arriving_piece_by_piece(model, feats, method):
    """Frames fed a few at a time, streams at different positions batched together: a chunk is
    decoded as soon as its look-ahead frames are in."""
    expected = _offline(model, feats, method)
    streams = [DecodeStream(model, method, stream_id=str(i)) for i in range(len(feats))]
    pieces = [17, 5, 29]
    pos = [0] * len(feats)
    step = 0
    while not all(s.done for s in streams):
        for i, s in enumerate(streams):
            if s.input_done:
                continue
            n = pieces[(step + i) % len(pieces)]
            s.accept_features(feats[i][pos[i] : pos[i] + n])
            pos[i] += n
            if pos[i] >= feats[i].shape[0]:
                s.input_finished()
        step += 1
        decoded = decode_one_chunk(model, streams)
        assert all(s.num_chunks <= s.total_chunks() for s in decoded)
    assert [s.hyp for s in streams] == expected
    enc_lens = [((n - 7) // 2 + 1) // 2 for n in LENS]
    assert [s.num_encoder_frames for s in streams] == enc_lens


def test_stream_errors(model):
    s = DecodeStream(model, "greedy_search", stream_id="u1")
    s.accept_features(torch.zeros(5, 80))
    with pytest.raises(ValueError, match="u1.*5 fbank frames.*minimum of 9"):
        s.input_finished()
    with pytest.raises(ValueError, match=r"features must be \(T, 80\)"):
        s.accept_features(torch.zeros(5, 40))
    with pytest.raises(ValueError, match="streaming method"):
        DecodeStream(model, "beam_search")


# ------------------------------------------------------------------------------ the scripts
def _checkpoint(tmp_path, cfg: dict, name: str = "epoch-1.pt"):
    from gmot.checkpoint import save_checkpoint

    model = _calibrated_model(cfg)
    path = tmp_path / "exp" / name
    save_checkpoint(path, model=model, params={"batch_idx_train": 1}, model_config=cfg)
    return path


def _argv(ckpt, lang, manifest, exp):
    return ["--checkpoint", str(ckpt), "--lang-dir", str(lang), "--test-cuts", str(manifest),
            "--exp-dir", str(exp), "--device", "cpu", "--num-workers", "0",
            "--max-duration", "1.0"]  # fmt: skip


def _recogs(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if "\thyp=" in line]


@pytest.mark.parametrize("method", METHODS)
def test_streaming_decode_main_equals_decode_main(corpus, method):  # noqa: F811
    """streaming_decode.py on a causal checkpoint gives decode.py's hypotheses with the same
    chunk and left context (--chunk-size/--left-context-frames override the model's)."""
    tmp_path, manifest, lang = corpus
    ckpt = _checkpoint(tmp_path, _causal_config(7, chunk_size=(16, 32), left_context_frames=(64,)))
    exp = tmp_path / "exp"
    flags = ["--decoding-method", method, "--chunk-size", "32", "--left-context-frames", "32"]
    cers = streaming_main.main(
        _argv(ckpt, lang, manifest, exp) + flags + ["--num-decode-streams", "2"]
    )
    setting = {"greedy_search": "greedy_search_max_sym_per_frame_1",
               "modified_beam_search": "modified_beam_search_beam_size_4"}[method]  # fmt: skip
    out = exp / "streaming" / method
    recogs = out / f"recogs-test-{setting}-epoch-1-chunk-32-left-32.txt"
    summary = out / "wer-summary-test-epoch-1-chunk-32-left-32.txt"
    assert (out / f"errs-test-{setting}-epoch-1-chunk-32-left-32.txt").is_file()
    assert summary.read_text().startswith("settings\tCER\n")
    offline = decode_main.main(_argv(ckpt, lang, manifest, exp) + flags)
    assert offline == cers
    offline_recogs = exp / method / f"recogs-test-{setting}-epoch-1-chunk-32-left-32.txt"
    assert _recogs(recogs) == _recogs(offline_recogs)
    assert len(_recogs(recogs)) == 3 and any(line.split("hyp=")[1] for line in _recogs(recogs))


def test_streaming_decode_refuses_non_causal_checkpoint(corpus):  # noqa: F811
    tmp_path, manifest, lang = corpus
    cfg = _causal_config(7, causal=False, chunk_size=(-1,), left_context_frames=(-1,))
    ckpt = _checkpoint(tmp_path, cfg, "plain.pt")
    argv = _argv(ckpt, lang, manifest, tmp_path / "exp")
    with pytest.raises(ValueError, match=r"plain\.pt holds a non-causal.*train with --causal 1"):
        streaming_main.main(argv)
    with pytest.raises(ValueError, match=r"--chunk-size.*plain\.pt.*without --causal 1"):
        decode_main.main(argv + ["--chunk-size", "32"])


@pytest.mark.parametrize(
    "flags,match",
    [
        (["--chunk-size", "12"], r"--chunk-size 12 is not allowed by .*causal\.pt.*multiples of 8"),
        (["--left-context-frames", "20"], r"--left-context-frames 20 is not allowed.*of 8"),
        (["--chunk-size", "0"], r"--chunk-size 0 is not allowed"),
        (["--chunk-size", "-1"], r"--chunk-size -1: streaming needs a positive value"),
        (["--left-context-frames", "-1"], r"--left-context-frames -1: streaming needs"),
        (["--num-decode-streams", "0"], r"--num-decode-streams must be >= 1"),
    ],
)
def test_streaming_decode_refuses_bad_chunk_flags(corpus, flags, match):  # noqa: F811
    tmp_path, manifest, lang = corpus
    ckpt = _checkpoint(tmp_path, _causal_config(7), "causal.pt")
    with pytest.raises(ValueError, match=match):
        streaming_main.main(_argv(ckpt, lang, manifest, tmp_path / "exp") + flags)


def test_streaming_model_first_chunk_must_be_finite(corpus):  # noqa: F811
    """A model whose first chunk size is -1 (whole utterance) needs --chunk-size to stream."""
    tmp_path, manifest, lang = corpus
    ckpt = _checkpoint(tmp_path, _causal_config(7, chunk_size=(-1, 16)), "full.pt")
    argv = _argv(ckpt, lang, manifest, tmp_path / "exp")
    with pytest.raises(ValueError, match=r"--chunk-size -1: streaming needs.*give --chunk-size N"):
        streaming_main.main(argv)


def test_decode_main_names_the_chunk_of_a_causal_model(corpus):  # noqa: F811
    """decode.py on a causal model without the flags: the model's first chunk and left context
    (simulated streaming) are named in the result files."""
    tmp_path, manifest, lang = corpus
    ckpt = _checkpoint(tmp_path, _causal_config(7), "causal.pt")
    exp = tmp_path / "exp"
    decode_main.main(_argv(ckpt, lang, manifest, exp))
    assert (exp / "greedy_search" / "wer-summary-test-causal-chunk-16-left-32.txt").is_file()
