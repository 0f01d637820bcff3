"""SIGKILL during training, then ``--start-batch`` resume, reaches the same final parameters as
an uninterrupted run (tolerance: 1e-6 absolute; observed: bit-identical on CPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gmot.checkpoint import load_checkpoint

HERE = Path(__file__).parent
FLAGS = [
    "--num-epochs", "3", "--use-ctc", "1", "--gmot-loss-scale", "0.5", "--save-every-n", "3",
    "--average-period", "1", "--log-interval", "1", "--valid-interval", "3", "--keep-last-k", "10",
]  # fmt: skip


def _env(delay: str = "0") -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", SYNTHETIC_BATCH_DELAY=delay)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    return env


def _train(exp: Path, *extra: str) -> None:
    r = subprocess.run(
        [sys.executable, str(HERE / "train_script.py"), str(exp), *FLAGS, *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    ref = tmp_path_factory.mktemp("ref")
    _train(ref)  # 3 epochs x 2 batches, uninterrupted
    return ref


def _assert_same_final(ref: Path, run: Path) -> None:
    a = load_checkpoint(ref / "epoch-3.pt")
    b = load_checkpoint(run / "epoch-3.pt")
    assert a["params"]["batch_idx_train"] == b["params"]["batch_idx_train"] == 6
    for key in ("model", "model_avg"):
        for k, v in a[key].items():
            if torch.is_floating_point(v):
                torch.testing.assert_close(b[key][k], v, rtol=0, atol=1e-6, msg=f"{key}.{k}")
    assert a["scheduler"] == b["scheduler"]
    assert a["sampler"] == b["sampler"]


def test_start_epoch_resume_matches_uninterrupted(tmp_path, reference_run):
    run = tmp_path / "run"
    _train(run, "--num-epochs", "2")
    _train(run, "--start-epoch", "3")
    _assert_same_final(reference_run, run)


def test_sigkill_then_start_batch_resume_matches_uninterrupted(tmp_path, reference_run):
    # the interrupted run (slowed-down batches) is killed once checkpoint-3.pt exists: batch 3 is
    # the first batch of epoch 2, so the resume starts inside an epoch (sampler state needed)
    run = tmp_path / "run"
    p = subprocess.Popen(
        [sys.executable, str(HERE / "train_script.py"), str(run), *FLAGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env("0.5"),
    )
    deadline = time.time() + 200
    while not (run / "checkpoint-3.pt").exists():
        assert p.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (run / "epoch-3.pt").exists()
    newest = max(int(q.stem.split("-")[1]) for q in run.glob("checkpoint-*.pt"))
    assert newest == 3, newest
    _train(run, "--start-batch", str(newest))
    _assert_same_final(reference_run, run)


def test_truncated_resume_checkpoint_is_named(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "checkpoint-5.pt").write_bytes(b"PK\x03\x04 truncated")
    r = subprocess.run(
        [sys.executable, str(HERE / "train_script.py"), str(exp), *FLAGS, "--start-batch", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    assert r.returncode != 0
    assert "checkpoint-5.pt" in r.stderr and "truncated or corrupt" in r.stderr
