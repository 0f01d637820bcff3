"""World size 2 (gloo on CPU) gives the same averaged gradients as world size 1 on the same data."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gmot.training.ddp import launched_by_torchrun

HERE = Path(__file__).parent


def test_ddp_gloo_gradients_match_single_process(tmp_path):
    port = 20000 + random.Random(os.getpid()).randrange(20000)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    r = subprocess.run(
        [sys.executable, str(HERE / "ddp_grad_script.py"), str(tmp_path), str(port)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    g1 = torch.load(tmp_path / "grads-ws1.pt")
    g2 = torch.load(tmp_path / "grads-ws2.pt")
    assert set(g1) == set(g2)
    assert any("gmot_adapter" in k for k in g1) and any("joiner" in k for k in g1)
    for k in g1:
        torch.testing.assert_close(g2[k], g1[k], rtol=1e-4, atol=1e-6, msg=k)


def test_torchrun_detection(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert not launched_by_torchrun()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not launched_by_torchrun()
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert launched_by_torchrun()


def test_world_size_2_through_main(tmp_path):
    """``train.py --world-size 2`` (mp.spawn, gloo on CPU) trains, logs per rank and saves."""
    port = 20000 + random.Random(os.getpid() + 1).randrange(20000)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    exp = tmp_path / "exp"
    r = subprocess.run(
        [sys.executable, str(HERE / "train_script.py"), str(exp), "--world-size", "2",
         "--master-port", str(port), "--num-epochs", "1", "--gmot-loss-scale", "0.5",
         "--log-interval", "1", "--valid-interval", "2"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert (exp / "epoch-1.pt").is_file()
    logs = sorted(p.name[-2:] for p in (exp / "log").glob("log-train-*"))
    assert logs == ["-0", "-1"]
    assert "world size 2" in (r.stdout + r.stderr)


def test_nonfinite_loss_on_one_rank_is_skipped_on_all(tmp_path):
    """A NaN batch on rank 1 only: no hang, the skip is logged, the weights stay finite and the
    next batch trains."""
    import torch

    from gmot.checkpoint import load_checkpoint

    port = 20000 + random.Random(os.getpid() + 2).randrange(20000)
    env = dict(os.environ, OMP_NUM_THREADS="1", SYNTHETIC_NAN_AT="1:0:1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    exp = tmp_path / "exp"
    r = subprocess.run(
        [sys.executable, str(HERE / "train_script.py"), str(exp), "--world-size", "2",
         "--master-port", str(port), "--num-epochs", "1", "--use-ctc", "1",
         "--log-interval", "1", "--valid-interval", "0", "--save-every-n", "1"],
        capture_output=True, text=True, timeout=240, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    rank1_log = next((exp / "log").glob("log-train-*-1")).read_text()
    assert "non-finite loss" in rank1_log and "skipping" in rank1_log
    c0 = load_checkpoint(exp / "checkpoint-1.pt")  # after the skipped batch
    c_init = c0["model"]
    for k, v in c_init.items():
        if torch.is_floating_point(v):
            assert torch.isfinite(v).all(), k
    c2 = load_checkpoint(exp / "epoch-1.pt")
    for k, v in c2["model"].items():
        if torch.is_floating_point(v):
            assert torch.isfinite(v).all(), k
    changed = [k for k, v in c2["model"].items() if not torch.equal(v, c_init[k])]
    assert changed  # the second (clean) batch did train


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("watch", [True, False])
def test_spawned_ranks_stop_when_the_launcher_is_killed(tmp_path, watch):
    """Kill -9 the launcher of two spawned ranks started as ``nohup ... &`` starts them (SIGINT
    ignored, which also disables the SIGINT that torch's spawn asks the kernel to send a rank
    when its parent dies): with the watch (what train.run does) the ranks exit within seconds;
    without it (the control) they keep running, which is the fault."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(HERE.parents[1]))
    launcher = subprocess.Popen(
        [sys.executable, str(HERE / "launcher_script.py"), str(tmp_path), "1" if watch else "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    pid_files = [tmp_path / f"rank-{r}.pid" for r in range(2)]
    try:
        deadline = time.monotonic() + 120
        while not all(f.exists() and f.read_text() for f in pid_files):
            assert launcher.poll() is None, launcher.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the ranks did not start within 120 s"
            time.sleep(0.2)
        pids = [int(f.read_text()) for f in pid_files]
        launcher.kill()
        launcher.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = [p for p in pids if _alive(p)]
        if watch:
            assert alive == [], f"ranks {alive} still run after their launcher was killed"
        else:
            assert alive == pids, "control: unwatched ranks should outlive the launcher"
    finally:
        if launcher.poll() is None:
            launcher.kill()
        for f in pid_files:
            if f.exists() and f.read_text():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(f.read_text()), signal.SIGKILL)


def test_exit_with_launcher_is_inert_without_a_marked_launcher(monkeypatch):
    from gmot.training.ddp import LAUNCHER_PID_ENV, exit_with_launcher, launcher_marked

    monkeypatch.delenv(LAUNCHER_PID_ENV, raising=False)
    assert exit_with_launcher() is None  # world size 1, torchrun: nothing to watch
    with launcher_marked():
        assert os.environ[LAUNCHER_PID_ENV] == str(os.getpid())
        assert exit_with_launcher() is None  # the launcher itself does not watch itself
    assert LAUNCHER_PID_ENV not in os.environ  # later children do not inherit the mark
