"""ModelConfig's streaming options (issue 23): flags, validation, training, checkpoint rebuild."""

from __future__ import annotations

import argparse

import pytest
import torch

from gmot.models.asr_model import build_model
from gmot.models.config import ModelConfig
from gmot.models.zipformer import encode_streaming
from gmot.training.train import get_parser, model_config_from_args

STREAMING_FLAGS = [
    "--causal", "1", "--chunk-size", "16,32,64,-1", "--left-context-frames", "64,128,256,-1",
]  # fmt: skip


def _tiny(**kw) -> dict:
    return {**dict(vocab_size=10, encoder="tiny", decoder_dim=16, joiner_dim=16), **kw}


def test_flags_reach_the_model_config_and_the_encoder():
    args = get_parser().parse_args(["--encoder-config", "tiny", *STREAMING_FLAGS])
    cfg = model_config_from_args(args, 10)
    assert cfg["causal"] is True
    assert cfg["chunk_size"] == (16, 32, 64, -1)
    assert cfg["left_context_frames"] == (64, 128, 256, -1)
    enc = build_model(cfg).encoder
    assert enc.config.causal and enc.config.chunk_size == (16, 32, 64, -1)
    assert enc.eval().chunk_params() == (16, 64)
    plain = model_config_from_args(get_parser().parse_args([]), 10)
    assert (plain["causal"], plain["chunk_size"], plain["left_context_frames"]) == (
        False,
        (-1,),
        (-1,),
    )


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(chunk_size=(16,)), r"--chunk-size.*needs causal=True"),
        (dict(causal=True, chunk_size="16,12"), "positive multiples of 8"),
        (dict(causal=True, left_context_frames="64,x"), "comma-separated integers"),
        (
            dict(causal=True, encoder={"causal": True, "chunk_size": (16,)}),
            "set twice",
        ),
    ],
)
def test_invalid_streaming_options(kw, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig.from_dict(_tiny(**kw))


def test_older_config_without_streaming_keys_is_not_causal():
    cfg = ModelConfig.from_dict({"vocab_size": 10, "encoder": "tiny"})
    assert cfg.encoder_config().causal is False
    as_json = ModelConfig.from_dict(_tiny(causal=True, chunk_size=[16, -1]))  # lists (JSON)
    assert as_json.chunk_size == (16, -1)


def test_tiny_causal_model_trains_and_rebuilds_from_its_checkpoint(tmp_path):
    from gmot.checkpoint import save_checkpoint
    from gmot.decoding.model_loading import load_model

    args = get_parser().parse_args(["--encoder-config", "tiny", *STREAMING_FLAGS])
    cfg = model_config_from_args(args, 10)
    cfg.update(decoder_dim=16, joiner_dim=16)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, x_lens, y = torch.randn(2, 150, 80), torch.tensor([150, 121]), [[3, 4, 5], [6, 7]]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(2):  # two batches: two chunk draws
        out = model(x, x_lens, y, prune_range=3)
        loss = out["simple"] + out["pruned"]
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())

    save_checkpoint(tmp_path / "epoch-1.pt", model=model, params={"batch_idx_train": 2})
    loaded, config, _ = load_model(argparse.Namespace(checkpoint=tmp_path / "epoch-1.pt"))
    assert config == model.model_config and config["chunk_size"] == (16, 32, 64, -1)
    assert loaded.encoder.config == model.encoder.config
    model.eval()
    with torch.no_grad():
        ref, ref_lens = model.forward_encoder(x, x_lens)
        got, got_lens = loaded.forward_encoder(x, x_lens)
        stream, stream_lens = encode_streaming(loaded.encoder, x, x_lens)
    assert torch.equal(ref, got) and torch.equal(ref_lens, got_lens)
    assert stream_lens.tolist() == ref_lens.tolist()
    for i, k in enumerate(ref_lens.tolist()):
        torch.testing.assert_close(stream[i, :k], ref[i, :k], atol=1e-5, rtol=1e-5)
