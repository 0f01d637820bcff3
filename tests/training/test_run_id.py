"""One run per experiment directory (issue 21 points 2 and 6): run ids in checkpoints, a new run
refusing an exp-dir holding another run's checkpoints, keep-last-k and averaging restricted to
one run, stale temporary files removed, file modes, the --epoch error listing what exists."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from gmot.checkpoint import (
    average_checkpoints,
    average_checkpoints_with_averaged_model,
    checkpoint_run_id,
    load_checkpoint,
    save_checkpoint,
)

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from test_resume import FLAGS, _env  # noqa: E402


def _train(exp: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(HERE / "train_script.py"), str(exp), *FLAGS, *extra],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )


def _save(path: Path, run_id: str | None, value: float, batch: int = 1) -> None:
    m = nn.Linear(2, 2)
    nn.init.constant_(m.weight, value)
    avg = nn.Linear(2, 2)
    nn.init.constant_(avg.weight, value)
    extra = {} if run_id is None else {"run_id": run_id}
    save_checkpoint(path, model=m, model_avg=avg, params={"batch_idx_train": batch}, extra=extra)


@pytest.fixture(scope="module")
def old_run(tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("old") / "exp"
    r = _train(exp, "--num-epochs", "2")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return exp


def test_new_run_refuses_exp_dir_with_checkpoints_then_overwrites(old_run, tmp_path):
    exp = tmp_path / "exp"
    subprocess.run(["cp", "-r", str(old_run), str(exp)], check=True)
    old_id = checkpoint_run_id(exp / "epoch-2.pt")
    assert old_id and old_id == checkpoint_run_id(exp / "checkpoint-3.pt")
    r = _train(exp, "--num-epochs", "1")
    assert r.returncode != 0
    assert "already holds checkpoints" in r.stderr and "--overwrite-exp-dir" in r.stderr
    assert checkpoint_run_id(exp / "epoch-2.pt") == old_id  # untouched
    r = _train(exp, "--num-epochs", "1", "--overwrite-exp-dir", "1")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert not (exp / "epoch-2.pt").exists() and not (exp / "checkpoint-3.pt").exists()
    new_id = checkpoint_run_id(exp / "epoch-1.pt")
    assert new_id and new_id != old_id


def test_resume_refuses_later_files_and_keeps_run_id(old_run, tmp_path):
    exp = tmp_path / "exp"
    subprocess.run(["cp", "-r", str(old_run), str(exp)], check=True)
    r = _train(exp, "--start-epoch", "2", "--num-epochs", "2")  # epoch-2.pt exists: later
    assert r.returncode != 0 and "from after the resume point epoch-1.pt" in r.stderr
    r = _train(exp, "--start-epoch", "3", "--num-epochs", "3")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert checkpoint_run_id(exp / "epoch-3.pt") == checkpoint_run_id(exp / "epoch-1.pt")


def test_stale_temp_files_removed_and_file_modes(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    stale = exp / ".checkpoint-3.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    old = os.umask(0o022)
    try:
        r = _train(exp, "--num-epochs", "2")
    finally:
        os.umask(old)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert not stale.exists()
    assert "left by an interrupted checkpoint save" in r.stdout + r.stderr
    for name in ("epoch-1.pt", "checkpoint-3.pt"):
        assert stat.S_IMODE((exp / name).stat().st_mode) == 0o644, name


def test_keep_last_k_deletes_only_this_runs_files(tmp_path):
    from gmot.training.run_dir import remove_old_checkpoints

    for b in (24, 28):
        _save(tmp_path / f"checkpoint-{b}.pt", "old-run", 1.0, b)
    for b in (2, 4, 6):
        _save(tmp_path / f"checkpoint-{b}.pt", "new-run", 2.0, b)
    remove_old_checkpoints(tmp_path, 2, "new-run")
    left = sorted(int(p.stem.split("-")[1]) for p in tmp_path.glob("checkpoint-*.pt"))
    assert left == [4, 6, 24, 28]


def test_averaging_refuses_mixed_runs(tmp_path):
    _save(tmp_path / "epoch-1.pt", "run-a", 1.0, 10)
    _save(tmp_path / "epoch-2.pt", "run-b", 3.0, 20)
    _save(tmp_path / "epoch-3.pt", "run-b", 5.0, 30)
    with pytest.raises(ValueError, match="epoch-2.pt belongs to training run run-b"):
        average_checkpoints([tmp_path / "epoch-1.pt", tmp_path / "epoch-2.pt"])
    with pytest.raises(ValueError, match="different runs"):
        average_checkpoints_with_averaged_model(tmp_path / "epoch-1.pt", tmp_path / "epoch-2.pt")
    out = average_checkpoints([tmp_path / "epoch-2.pt", tmp_path / "epoch-3.pt"])
    assert torch.all(out["weight"] == 4.0)
    _save(tmp_path / "epoch-4.pt", None, 1.0, 40)  # saved before run ids: matches only its kind
    with pytest.raises(ValueError, match="no run id"):
        average_checkpoints([tmp_path / "epoch-3.pt", tmp_path / "epoch-4.pt"])


def test_start_batch_refuses_inexact_sampler_state(tmp_path):
    from gmot.training.train import check_exact_sampler_state

    p = tmp_path / "checkpoint-6.pt"
    check_exact_sampler_state({"sampler_exact": True, "params": {"num_workers": 2}}, p)
    check_exact_sampler_state({"params": {"num_workers": 0}}, p)  # older file, no workers
    for ck in ({"sampler_exact": False, "params": {"cur_epoch": 2}},
               {"params": {"num_workers": 2, "cur_epoch": 2}}):  # fmt: skip
        with pytest.raises(RuntimeError, match="--start-epoch 2"):
            check_exact_sampler_state(ck, p)


def test_missing_epoch_lists_what_exists(tmp_path):
    from gmot.decoding.model_loading import resolve_checkpoints

    for e in (1, 2):
        (tmp_path / f"epoch-{e}.pt").write_bytes(b"")
    (tmp_path / "checkpoint-6.pt").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as e:
        resolve_checkpoints(tmp_path, 5, 1, use_averaged_model=True)
    msg = str(e.value)
    assert "epoch-4.pt" in msg and "epoch-5.pt" in msg
    assert "epoch-N.pt for N = 1, 2" in msg and "checkpoint-B.pt for B = 6" in msg


def test_pretrained_has_the_checkpoint_file_mode(tmp_path):
    from gmot.export.export_main import save_pretrained

    old = os.umask(0o022)
    try:
        _save(tmp_path / "epoch-1.pt", "r", 1.0)
        save_pretrained(nn.Linear(2, 2), {}, tmp_path / "pretrained.pt")
    finally:
        os.umask(old)
    modes = {stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("epoch-1.pt", "pretrained.pt")}
    assert modes == {0o644}
    assert load_checkpoint(tmp_path / "pretrained.pt")["model_config"] == {}
