"""train.py's CLI: every flag documented, recipe scripts runnable, model config from flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gmot.training.train import (
    get_parser,
    model_config_from_args,
    read_vocab_size,
    schedule_batch_count_scale,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_flag_has_help():
    import argparse

    from gmot.training import train

    own = argparse.ArgumentParser()
    for add in (train.add_model_arguments, train.add_loss_arguments, train.add_gmot_arguments,
                train.add_training_arguments):  # fmt: skip
        add(own)
    missing = [a.option_strings for a in own._actions if a.option_strings and not a.help]
    assert missing == [["-h", "--help"]] or not missing
    parser = get_parser()
    # every flag of the full parser (data module, rnnt backend, ...) explains itself
    undocumented = [
        a.option_strings
        for a in parser._actions
        if a.option_strings and not a.help and "--help" not in a.option_strings
    ]
    assert undocumented == []
    flags = {s for a in parser._actions for s in a.option_strings}
    for f in ("--world-size", "--master-port", "--num-epochs", "--start-epoch", "--start-batch",
              "--exp-dir", "--lang-dir", "--base-lr", "--lr-batches", "--lr-epochs", "--use-fp16",
              "--use-bf16", "--seed", "--save-every-n", "--keep-last-k", "--average-period",
              "--valid-interval", "--log-interval", "--tensorboard", "--inf-check", "--scan-oom",
              "--use-ctc", "--ctc-loss-scale", "--use-attention-decoder", "--gmot-loss-scale",
              "--gmot-alpha", "--gmot-epsilon", "--gmot-layer", "--gmot-warmup-batches",
              "--rnnt-backend", "--warm-step", "--prune-range"):  # fmt: skip
        assert f in flags, f


def test_model_config_from_flags(tmp_path):
    (tmp_path / "tokens.txt").write_text("<blk> 0\n<sos/eos> 1\n<unk> 2\n你 3\n好 4\n")
    assert read_vocab_size(tmp_path / "tokens.txt") == 5
    args = get_parser().parse_args(["--gmot-alpha", "0.3", "--use-ctc", "1"])
    cfg = model_config_from_args(args, 5)
    assert cfg["gmot_plm_dim"] == 0  # GM-OT off by default: no adapter
    assert cfg["use_ctc"] and cfg["gmot_loss"]["alpha"] == 0.3
    args = get_parser().parse_args(["--gmot-loss-scale", "0.1", "--gmot-temporal-prior", "kl"])
    cfg = model_config_from_args(args, 5)
    assert cfg["gmot_plm_dim"] == 768 and cfg["gmot_loss"]["temporal_prior"] == "kl"
    (tmp_path / "bad.txt").write_text("<blk> x\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_vocab_size(tmp_path / "bad.txt")


@pytest.mark.parametrize("corpus", ["hsk", "aishell"])
def test_recipe_script_help(corpus):
    script = ROOT / "egs" / corpus / "ASR" / "zipformer_gmot" / "train.py"
    assert os.access(script, os.X_OK)
    r = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=script.parents[1],
    )
    assert r.returncode == 0, r.stderr
    assert "--gmot-loss-scale" in r.stdout


def test_schedule_batch_count_scale():
    # icefall's convention: 600 s of audio per schedule "batch"
    assert schedule_batch_count_scale(200.0, 1) == pytest.approx(1 / 3)
    assert schedule_batch_count_scale(1000.0, 8) == pytest.approx(1000 * 8 / 600)
    assert schedule_batch_count_scale(100.0, 1, ref_duration=10.0) == pytest.approx(10.0)
    args = get_parser().parse_args(["--ref-duration", "10"])
    assert args.ref_duration == 10.0
    with pytest.raises(ValueError, match="--ref-duration"):
        schedule_batch_count_scale(100.0, 1, ref_duration=0.0)
