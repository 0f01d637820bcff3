#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and link it as ./.venv.
#
# The venv lives outside the clone, in ${GMOT_VENV_ROOT:-$HOME/.cache/gmot}/venv-<hash>, where
# <hash> covers requirements.txt and the Python version: a clone, a CI run or a second checkout
# that changes no requirement reuses it instead of reinstalling ~5.5 GB (torch is a CUDA build,
# see README "Why torch 2.14.1"). A half-built venv (killed install) has no .complete marker and
# is rebuilt from scratch.
#
# The venv holds third-party packages only, never gmot: being shared, an editable install of gmot
# would point at whichever clone ran this script last, and every other clone would silently import
# that clone's code (or none, once it is deleted). Instead each clone runs its own gmot: the entry
# scripts (egs/*/ASR/zipformer_gmot, local, tools, bench) put their repository first on sys.path,
# `python -m pytest` from the repository root has it as the cwd, and tests/conftest.py passes it on
# to subprocesses via PYTHONPATH. A gmot that an older revision of this script (or a manual
# `pip install -e .`) left in the venv is uninstalled here, and the check at the end fails if
# the venv alone can still import a gmot or if this clone's python does not import this clone's.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
root=${GMOT_VENV_ROOT:-$HOME/.cache/gmot}
key=$( { cat "$repo/requirements.txt"; "$python" -c 'import sys; print(sys.version)'; } \
       | sha256sum | cut -c1-16)
venv="$root/venv-$key"
mkdir -p "$root"

exec 9>"$root/.lock-$key"
flock 9   # two setups at once (CI + a developer) wait for each other instead of racing

if [ ! -f "$venv/.complete" ]; then
  echo "[setup_env] creating $venv (first time for these requirements; about 70 s with a local package mirror, longer when pip downloads ~3 GB)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' >&2 || true
  # pip prints one harmless 'Location ... is ignored' warning per package on this machine's
  # local mirrors; filter them so real errors stay visible. pipefail keeps pip's exit status.
  set +e
  "$venv/bin/python" -m pip install -q -r "$repo/requirements.txt" 2>&1 \
    | grep -v '^WARNING: Location' >&2
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    echo "[setup_env] pip install -r requirements.txt failed (exit $status); venv left incomplete" >&2
    exit "$status"
  fi
  touch "$venv/.complete"
else
  echo "[setup_env] reusing $venv" >&2
fi

# No gmot in the shared venv (see the header): remove one left by an older revision of this script.
if compgen -G "$venv/lib/python*/site-packages/gmot-*.dist-info" >/dev/null; then
  echo "[setup_env] uninstalling the gmot installed in the shared venv (another clone's code)" >&2
  "$venv/bin/python" -m pip uninstall -q -y gmot 2>&1 | grep -v '^WARNING: Location' >&2 || true
fi
ln -sfn "$venv" "$repo/.venv"
# Fail here, with the reason, if the environment cannot import what the project needs, if the venv
# alone supplies a gmot (cwd / and -E: no PYTHONPATH), or if this clone does not import its own.
if leaked=$(cd / && "$venv/bin/python" -E -c 'import importlib.util as u
s = u.find_spec("gmot"); print(s.origin if s else "")') && [ -n "$leaked" ]; then
  echo "[setup_env] the shared venv $venv itself provides gmot ($leaked): remove it" >&2
  exit 1
fi
cd "$repo"  # `python -` puts the cwd first on sys.path, as `python -m pytest` does
"$repo/.venv/bin/python" - "$repo" <<'PY'
import sys
from pathlib import Path

import gmot
repo = Path(sys.argv[1]).resolve()
if not Path(gmot.__file__).resolve().is_relative_to(repo):
    sys.exit(f"[setup_env] import gmot loaded {gmot.__file__}, not this clone's ({repo}/gmot)")
import torch, torchaudio, lhotse, ot, transformers
from transformers import BertModel  # fails if torchaudio cannot load beside torch
print(f"[setup_env] ok: torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
      f"lhotse {lhotse.__version__}, transformers {transformers.__version__}, pot {ot.__version__}; "
      f"gmot from {gmot.__file__}")
PY
