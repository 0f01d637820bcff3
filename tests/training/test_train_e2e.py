"""End to end: the hsk recipe's train.py on a tiny synthetic lhotse corpus (sine-wave audio,
Chinese texts, PLM targets) with the real data module; TensorBoard, logs, checkpoints, resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from make_cuts import PLM_DIM, make_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "egs" / "hsk" / "ASR" / "zipformer_gmot" / "train.py"


def _data_flags() -> list[str]:
    """Data-module flags that keep the run tiny, where the data module defines them."""
    from gmot.training.train import get_parser

    known = {s for a in get_parser()._actions for s in a.option_strings}
    wanted = {
        "--max-duration": "6",
        "--num-workers": "0",
        "--enable-musan": "0",
        "--enable-spec-aug": "0",
        "--shuffle": "1",
        "--bucketing-sampler": "0",
        "--min-utt-duration": "0.5",
        "--drop-last": "0",
    }
    return [x for k, v in wanted.items() if k in known for x in (k, v)]


def command(tmp: Path, corpus: dict, *extra: str) -> list[str]:
    return [
        sys.executable, str(SCRIPT),
        "--encoder-config", "tiny", "--decoder-dim", "32", "--joiner-dim", "32",
        "--use-ctc", "1", "--gmot-loss-scale", "0.5", "--gmot-plm-dim", str(PLM_DIM),
        "--exp-dir", str(tmp / "exp"), "--lang-dir", str(corpus["lang"]),
        "--train-cuts", str(corpus["train"]), "--valid-cuts", str(corpus["dev"]),
        "--log-interval", "1", "--valid-interval", "2", "--plot-plan-interval", "2",
        "--save-every-n", "2", "--average-period", "1", "--base-lr", "0.05",
        *_data_flags(), *extra,
    ]  # fmt: skip


def _single_process_env() -> dict[str, str]:
    """Environment for a one-process CPU training subprocess (no inherited DDP variables)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    return env


def test_recipe_train_end_to_end(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    env = _single_process_env()
    r = subprocess.run(
        command(tmp_path, corpus, "--num-epochs", "2", "--scan-oom", "1"),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    exp = tmp_path / "exp"
    assert (exp / "epoch-1.pt").is_file() and (exp / "epoch-2.pt").is_file()
    logs = list((exp / "log").glob("log-train-*"))
    log_text = logs[0].read_text(encoding="utf-8")
    assert "validation" in log_text and "pessimistic batches ran without OOM" in log_text
    assert "torch" in (exp / "env.txt").read_text()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from gmot.checkpoint import load_checkpoint

    ea = EventAccumulator(str(exp / "tensorboard"))
    ea.Reload()
    tags = ea.Tags()
    for t in ("train/current_pruned", "train/current_ctc", "train/current_gmot", "train/lr",
              "train/grad_scale", "train/tot_gmot_distance", "train/tot_gmot_plan_entropy",
              "valid/loss"):  # fmt: skip
        assert t in tags["scalars"], (t, tags["scalars"])
    assert "train/transport_plan" in tags["images"]
    ck = load_checkpoint(exp / "epoch-2.pt")
    assert ck["sampler"] is not None and ck["model_avg"] is not None
    assert ck["model_config"]["gmot_plm_dim"] == PLM_DIM
    # tools/plot_gmot_plan.py draws the plan of one utterance from this checkpoint
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "plot_gmot_plan.py"),
         "--checkpoint", str(exp / "epoch-2.pt"), "--cuts", str(corpus["dev"]),
         "--out", str(tmp_path / "plan.png"), "--epsilon", "0.1", "0.01"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for eps in ("0.1", "0.01"):
        png = tmp_path / f"plan-eps{eps}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert r.stdout.count("total variation to uniform=") == 2
    # tools/check_audio_use.py scores the training transcripts with own / other / no audio
    r = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_audio_use.py"),
         "--checkpoint", str(exp / "epoch-2.pt"), "--cuts", str(corpus["train"]),
         "--lang-dir", str(corpus["lang"]), "--num-cuts", "4"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for head in ("simple", "pruned", "ctc"):
        assert any(ln.split()[:2] == [head, "own"] and "other/own" in ln
                   for ln in r.stdout.splitlines()), r.stdout  # fmt: skip
    # resume at the next epoch, with a one-epoch lr cooldown (the options of this run apply)
    r = subprocess.run(
        command(tmp_path, corpus, "--num-epochs", "3", "--start-epoch", "3",
                "--lr-cooldown-epochs", "1"),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (exp / "epoch-3.pt").is_file()
    from gmot.optim import eden_lr

    ck3 = load_checkpoint(exp / "epoch-3.pt")
    sched = ck3["scheduler"]
    assert sched["cooldown_epochs"] == 1.0 and sched["epoch"] == 2
    per_epoch = sched["epoch_start_batch"] / 2  # batches of epochs 1-2
    done = (sched["batch"] - sched["epoch_start_batch"]) / per_epoch  # share of epoch 3 done
    eden = eden_lr(0.05, sched["batch"], 2, sched["lr_batches"], sched["lr_epochs"],
                   sched["warmup_batches"], sched["warmup_start"])  # fmt: skip
    lr = ck3["optimizer"]["param_groups"][0]["lr"]
    assert lr == pytest.approx(eden * max(0.0, 1.0 - done), abs=1e-9), (lr, eden, done)


def test_epoch_without_batches_is_reported(tmp_path):
    """Small data + drop_last + a huge max-duration: the sampler yields nothing; say so."""
    corpus = make_corpus(tmp_path / "corpus")
    env = _single_process_env()
    extra = ("--num-epochs", "1", "--drop-last", "1", "--max-duration", "1000",
             "--bucketing-sampler", "0")  # fmt: skip
    r = subprocess.run(
        command(tmp_path, corpus, *extra),
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "epoch 1 produced no training batch" in r.stdout + r.stderr


def test_pitch_model_trains_and_refuses_a_resume_without_pitch(tmp_path):
    """--pitch 1: the checkpoint's model reads 83 features; resuming it with fbank alone stops
    with a message naming --pitch instead of failing inside the encoder."""
    import torch

    corpus = make_corpus(tmp_path / "corpus")
    env = _single_process_env()
    run = dict(capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    r = subprocess.run(command(tmp_path, corpus, "--num-epochs", "1", "--pitch", "1"), **run)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ckpt = torch.load(tmp_path / "exp" / "epoch-1.pt", map_location="cpu", weights_only=False)
    assert ckpt["model_config"]["num_features"] == 83
    r = subprocess.run(command(tmp_path, corpus, "--num-epochs", "2", "--start-epoch", "2"), **run)
    assert r.returncode != 0
    assert "reads 83 features per frame, but --pitch 0 gives 80" in r.stdout + r.stderr
