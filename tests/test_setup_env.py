"""tools/setup_env.sh keeps gmot out of the shared venv and checks that a clone imports its own.

Runs the script on a small stand-in clone against a stand-in venv in a temporary GMOT_VENV_ROOT:
a bare venv (same base Python) that sees the real venv's packages through a .pth file, marked
complete, so nothing is installed and the shared venv in ~/.cache/gmot is not touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, Path]:
    venv_link = REPO / ".venv"
    if not venv_link.is_symlink() or Path(sys.prefix).resolve() != venv_link.resolve():
        pytest.skip("needs the tests to run in the .venv that tools/setup_env.sh linked")
    clone = tmp_path / "clone"
    (clone / "tools").mkdir(parents=True)
    shutil.copy(REPO / "tools" / "setup_env.sh", clone / "tools")
    shutil.copy(REPO / "requirements.txt", clone)  # same requirements: same venv key
    (clone / "gmot").mkdir()
    (clone / "gmot" / "__init__.py").write_text("")
    venv = tmp_path / "cache" / Path(os.readlink(venv_link)).name  # venv-<key>
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "_shared.pth").write_text(str(Path(sysconfig.get_path("purelib")).resolve()) + "\n")
    (venv / ".complete").touch()
    decoy = tmp_path / "decoy"
    (decoy / "gmot").mkdir(parents=True)
    (decoy / "gmot" / "__init__.py").write_text("")
    return {"clone": clone, "venv": venv, "site": site, "decoy": decoy}


def _setup_env(s: dict[str, Path], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(s["clone"] / "tools" / "setup_env.sh")],
        env=dict(os.environ, GMOT_VENV_ROOT=str(s["venv"].parent), OMP_NUM_THREADS="1", **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_uninstalls_a_stale_gmot_and_imports_the_clones_own(stand_in) -> None:
    """An editable gmot of another clone, left in the venv by an older setup_env, is removed."""
    s = stand_in
    (s["decoy"] / "gmot" / "__init__.py").write_text("raise RuntimeError('decoy gmot')\n")
    dist = s["site"] / "gmot-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gmot\nVersion: 0.1.0\n")
    (dist / "INSTALLER").write_text("pip\n")
    (s["site"] / "__editable__.gmot-0.1.0.pth").write_text(f"{s['decoy']}\n")
    names = [
        "__editable__.gmot-0.1.0.pth",
        *(f"{dist.name}/{n}" for n in ("METADATA", "INSTALLER", "RECORD")),
    ]
    (dist / "RECORD").write_text("".join(f"{n},,\n" for n in names))

    r = _setup_env(s, PYTHONPATH=str(s["decoy"]))  # the cwd (the clone) must win over it too
    assert r.returncode == 0, r.stderr[-3000:]
    assert "uninstalling the gmot" in r.stderr
    assert f"gmot from {s['clone'] / 'gmot' / '__init__.py'}" in r.stdout, r.stdout
    assert not dist.exists() and not (s["site"] / "__editable__.gmot-0.1.0.pth").exists()
    assert (s["clone"] / ".venv").resolve() == s["venv"].resolve()


def test_fails_when_the_venv_itself_provides_a_gmot(stand_in) -> None:
    (stand_in["site"] / "stray.pth").write_text(f"{stand_in['decoy']}\n")  # no dist-info
    r = _setup_env(stand_in)
    assert r.returncode != 0 and "itself provides gmot" in r.stderr, r.stderr[-3000:]


def test_fails_when_the_clone_does_not_import_its_own_gmot(stand_in) -> None:
    shutil.rmtree(stand_in["clone"] / "gmot")
    r = _setup_env(stand_in, PYTHONPATH=str(stand_in["decoy"]))
    assert r.returncode != 0 and "not this clone's" in r.stderr, r.stderr[-3000:]
