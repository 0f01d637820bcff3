#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and link it as ./.venv.
#
# The venv lives outside the clone, in ${GMOT_VENV_ROOT:-$HOME/.cache/gmot}/venv-<hash>, where
# <hash> covers requirements.txt and the Python version: a clone, a CI run or a second checkout
# that changes no requirement reuses it instead of reinstalling ~5.5 GB (torch is a CUDA build,
# see README "Why torch 2.14.1"). A half-built venv (killed install) has no .complete marker and
# is rebuilt from scratch. gmot itself is installed editable (no deps) on every call: cheap.
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

# gmot itself, editable; its build chatter goes to a log that is shown only if it fails.
if ! "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation -e "$repo" \
    >"$root/editable-install.log" 2>&1; then
  grep -v '^WARNING: Location' "$root/editable-install.log" >&2
  echo "[setup_env] pip install -e $repo failed" >&2
  exit 1
fi
ln -sfn "$venv" "$repo/.venv"
# Fail here, with the reason, if the environment cannot import what the project needs.
"$repo/.venv/bin/python" - <<'PY'
import torch, torchaudio, lhotse, ot, transformers
from transformers import BertModel  # fails if torchaudio cannot load beside torch
import gmot
print(f"[setup_env] ok: torch {torch.__version__}, torchaudio {torchaudio.__version__}, "
      f"lhotse {lhotse.__version__}, transformers {transformers.__version__}, pot {ot.__version__}")
PY
