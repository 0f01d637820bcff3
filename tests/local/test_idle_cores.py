"""local/idle_cores.sh: the thread count run.sh starts with."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "local" / "idle_cores.sh"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")


def _run(*args: str, **env: str) -> int:
    r = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def test_cores_ignore_openmp_variables() -> None:
    usable = len(os.sched_getaffinity(0))
    assert _run("--cores") == usable
    # GNU nproc alone would print 1 here; run.sh exports OMP_NUM_THREADS before prepare.sh runs
    assert _run("--cores", OMP_NUM_THREADS="1", OMP_THREAD_LIMIT="1") == usable


def test_a_busy_core_is_not_counted_as_idle() -> None:
    usable = len(os.sched_getaffinity(0))
    if usable < 2:
        pytest.skip("needs 2 cores")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        n = _run("--window", "1")
    finally:
        busy.kill()
        busy.wait()
    assert 1 <= n <= usable - 1, n


def test_unknown_option_is_refused() -> None:
    r = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 1 and "--bogus" in r.stderr
