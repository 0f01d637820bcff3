"""train.py's CLI: every flag documented, recipe scripts runnable, model config from flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gmot.training.train import (
    default_cut_paths,
    default_data_factory,
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
                train.add_training_arguments, train.add_cut_arguments):  # fmt: skip
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
    # the recipe, not the library, names the corpus and its prepare.sh output directories
    text = " ".join(r.stdout.split())
    for flag, default in (("--corpus CORPUS", corpus),
                          ("--manifest-dir MANIFEST_DIR", "data/manifests"),
                          ("--plm-manifest-dir PLM_MANIFEST_DIR", "data/plm")):  # fmt: skip
        shown = re.search(r"\(default: ([^)]*)\)", text.split(f" {flag} ", 1)[1])
        assert shown and shown.group(1) == default, flag


def test_default_cuts_come_from_corpus_and_directory(tmp_path):
    params = get_parser().parse_args(["--corpus", "toy", "--plm-manifest-dir", str(tmp_path)])
    params.gmot_loss_scale = 0.5  # GM-OT: the cuts with PLM targets
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "toy_cuts_train"))):
        default_data_factory(params, None, 1, 0)
    params = get_parser().parse_args(["--corpus", "toy", "--manifest-dir", str(tmp_path / "m")])
    params.gmot_loss_scale = 0.0
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "m" / "toy_cuts_train"))):
        default_data_factory(params, None, 1, 0)
    assert default_cut_paths("toy", "d") == (
        Path("d/toy_cuts_train.jsonl.gz"),
        Path("d/toy_cuts_dev.jsonl.gz"),
    )
    with pytest.raises(ValueError, match="--corpus is not set"):
        default_cut_paths(None, "d")


def test_schedule_batch_count_scale():
    # icefall's convention: 600 s of audio per schedule "batch"
    assert schedule_batch_count_scale(200.0, 1) == pytest.approx(1 / 3)
    assert schedule_batch_count_scale(1000.0, 8) == pytest.approx(1000 * 8 / 600)
    assert schedule_batch_count_scale(100.0, 1, ref_duration=10.0) == pytest.approx(10.0)
    args = get_parser().parse_args(["--ref-duration", "10"])
    assert args.ref_duration == 10.0
    with pytest.raises(ValueError, match="--ref-duration"):
        schedule_batch_count_scale(100.0, 1, ref_duration=0.0)
