"""Per-utterance input normalisation (``ZipformerConfig.input_norm``) and dict configs over a
named base."""

import json

import pytest
import torch

from gmot.models.config import ModelConfig
from gmot.models.zipformer import build_encoder
from gmot.models.zipformer.config import NAMED_CONFIGS, ZipformerConfig, get_config
from gmot.models.zipformer.encoder import normalize_utterances


def test_normalize_utterances_matches_per_utterance_statistics():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 50, 4, generator=g) * 3.0 + 7.0
    lens = torch.tensor([50, 31, 9])
    x[1, 31:] = 1e4  # padding must neither count nor survive
    y = normalize_utterances(x, lens)
    for b, n in enumerate(lens.tolist()):
        v = x[b, :n].double()
        ref = (v - v.mean(0)) / torch.sqrt(v.var(0, unbiased=False) + 1e-5)
        torch.testing.assert_close(y[b, :n].double(), ref, rtol=1e-5, atol=1e-5)
        assert (y[b, n:] == 0).all()


def test_normalize_utterances_half_precision_does_not_overflow():
    x = torch.full((1, 3000, 2), 200.0, dtype=torch.float16)  # sum of squares >> 65504
    x[0, ::2] = -200.0
    y = normalize_utterances(x, torch.tensor([3000]))
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    torch.testing.assert_close(y.abs().float(), torch.ones(1, 3000, 2), rtol=1e-3, atol=1e-3)


def test_utterance_norm_makes_the_encoder_blind_to_level_and_scale():
    torch.manual_seed(0)
    enc = build_encoder({"base": "tiny", "input_norm": "utterance"}).eval()
    plain = build_encoder("tiny").eval()
    x = torch.randn(2, 80, 80)
    lens = torch.tensor([80, 61])
    with torch.no_grad():
        a, _ = enc(x, lens)
        b, _ = enc(x * 2.5 + 4.0, lens)  # a louder, offset copy: same normalised input
        c, _ = plain(x, lens)
        d, _ = plain(x * 2.5 + 4.0, lens)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert (c - d).abs().max() > 1e-2  # without it the encoder does see the change


def test_dict_over_a_named_base_and_errors():
    cfg = get_config({"base": "tiny", "input_norm": "utterance", "dropout": 0.0})
    assert cfg == ZipformerConfig(
        **{**NAMED_CONFIGS["tiny"], "input_norm": "utterance", "dropout": 0.0}
    )
    assert get_config("tiny").input_norm == "none"
    with pytest.raises(ValueError, match="base config 'huge'"):
        get_config({"base": "huge"})
    with pytest.raises(ValueError, match="unknown Zipformer config keys"):
        get_config({"base": "tiny", "dropuot": 0.0})
    with pytest.raises(ValueError, match="input_norm must be one of"):
        get_config({"base": "tiny", "input_norm": "global"})
    with pytest.raises(ValueError, match="causal"):
        get_config({"base": "tiny", "input_norm": "utterance", "causal": True})


def test_encoder_config_flag_takes_json_and_the_checkpoint_rebuilds_it():
    from gmot.models.asr_model import build_model
    from gmot.training.train import get_parser, model_config_from_args

    spec = {"base": "tiny", "input_norm": "utterance"}
    args = get_parser().parse_args(["--encoder-config", json.dumps(spec)])
    cfg = model_config_from_args(args, 10)
    assert cfg["encoder"] == spec
    model = build_model(cfg)
    assert model.encoder.config.input_norm == "utterance"
    rebuilt = build_model(ModelConfig.from_dict(model.model_config).to_dict())
    assert rebuilt.encoder.config == model.encoder.config
    with pytest.raises(ValueError, match="not valid JSON"):
        model_config_from_args(get_parser().parse_args(["--encoder-config", "{base: tiny}"]), 10)
