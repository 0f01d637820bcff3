"""Typed settings: every dataclass field has a flag with help (or says where its value comes
from), flag defaults are the dataclass defaults, old checkpoints' model configs still load."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch

from gmot.models.asr_model import build_model
from gmot.models.config import ModelConfig
from gmot.ot import GMOTConfig, GMOTLoss
from gmot.settings import flag_table, from_flags
from gmot.training.train import get_parser, model_config_from_args

# what gmot wrote as "model_config" before the settings were dataclasses (model_config_from_args
# of that version with the test suite's tiny sizes): no check_every/grad/... in gmot_loss, no
# dropout in attention_decoder
OLD_MODEL_CONFIG = {
    "vocab_size": 12,
    "encoder": "tiny",
    "use_transducer": True,
    "use_ctc": True,
    "use_attention_decoder": False,
    "decoder_dim": 32,
    "joiner_dim": 32,
    "context_size": 1,
    "attention_decoder": {
        "attention_dim": 256,
        "num_heads": 4,
        "feedforward_dim": 1024,
        "num_layers": 2,
        "label_smoothing": 0.1,
    },
    "gmot_plm_dim": 16,
    "gmot_layer": -1,
    "gmot_adapter_hidden": 0,
    "gmot_normalize": "frames",
    "gmot_center_plm": False,
    "gmot_loss": {
        "alpha": 0.5,
        "epsilon": 0.1,
        "solver": "pgd",
        "max_iter": 10,
        "tol": 0.0001,
        "max_iter_inner": 50,
        "tol_inner": 0.0001,
        "inner_kernel": "auto",
        "reg_marginals": (1.0, None),
        "edge_position_weight": 0.0,
        "temporal_prior": None,
        "temporal_sigma": 1.0,
        "temporal_weight": 1.0,
    },
}


def _parser_flags() -> dict[str, argparse.Action]:
    return {s: a for a in get_parser()._actions for s in a.option_strings}


@pytest.mark.parametrize("cls", [ModelConfig, GMOTConfig])
def test_every_field_has_a_flag_with_help_or_a_source(cls):
    flags = _parser_flags()
    for spec in flag_table(cls):
        assert spec.help.strip(), f"{cls.__name__}.{spec.field} has no help text"
        if spec.flag is None:
            assert spec.derived, f"{cls.__name__}.{spec.field}: no flag and no 'derived' source"
            continue
        assert spec.flag in flags, f"{cls.__name__}.{spec.field}: {spec.flag} not in train.py"
        assert flags[spec.flag].help == spec.help


def test_flag_defaults_are_the_dataclass_defaults():
    args = get_parser().parse_args([])
    assert from_flags(GMOTConfig, args) == GMOTConfig()
    cfg = model_config_from_args(args, 5)  # --gmot-loss-scale 0: no adapter
    assert cfg == ModelConfig(vocab_size=5).to_dict()
    args = get_parser().parse_args(
        ["--gmot-loss-scale", "0.1", "--gmot-unbalanced-rho", "2", "--gmot-temporal-prior", "kl"]
    )
    cfg = ModelConfig.from_dict(model_config_from_args(args, 5))
    assert cfg.gmot_plm_dim == 768
    assert cfg.gmot_loss.reg_marginals == (2.0, None) and cfg.gmot_loss.temporal_prior == "kl"


def test_old_checkpoint_model_config_loads(tmp_path):
    from gmot.checkpoint import load_checkpoint, save_checkpoint
    from gmot.decoding.model_loading import load_model

    torch.manual_seed(0)
    m = build_model(OLD_MODEL_CONFIG)
    save_checkpoint(
        tmp_path / "epoch-1.pt", model=m, params={"batch_idx_train": 1}, model_config=None
    )
    ck = load_checkpoint(tmp_path / "epoch-1.pt")
    ck["model_config"] = OLD_MODEL_CONFIG  # as an older gmot stored it
    torch.save(ck, tmp_path / "old.pt")
    loaded, config, _ = load_model(argparse.Namespace(checkpoint=tmp_path / "old.pt"))
    assert config == m.model_config
    assert config["gmot_loss"]["check_every"] == 10 and config["gmot_loss"]["warmstart"]
    assert config["attention_decoder"]["dropout"] == 0.1
    for k, v in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_unknown_config_keys_fail_clearly():
    with pytest.raises(ValueError, match=r"unknown keys \['bogus'\]"):
        build_model({**OLD_MODEL_CONFIG, "bogus": 1})
    with pytest.raises(ValueError, match=r"GM-OT loss config has unknown keys \['gamma'\]"):
        build_model({**OLD_MODEL_CONFIG, "gmot_loss": {"gamma": 1.0}})


def test_gmot_loss_config_and_keyword_forms_agree():
    cfg = GMOTConfig(alpha=0.3, epsilon=0.2, max_iter=4)
    assert GMOTLoss(cfg).config == GMOTLoss(alpha=0.3, epsilon=0.2, max_iter=4).config
    assert GMOTLoss(0.3, 0.2, max_iter=4).config == cfg  # the old positional form
    with pytest.raises(TypeError, match="dataclasses.replace"):
        GMOTLoss(cfg, max_iter=5)
    with pytest.raises(TypeError):
        GMOTLoss(max_iters=5)  # a misspelt setting is an error, not ignored
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.alpha = 0.1  # type: ignore[misc]
