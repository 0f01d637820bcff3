#!/usr/bin/env bash
# The README's test command: set up the environment, lint, run the CPU test suite.
# Extra arguments go to pytest (e.g. `bash tools/run_tests.sh -m slow` for the slow tests).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
bash tools/setup_env.sh
py=.venv/bin/python
echo "[run_tests] ruff check + format check" >&2
$py -m ruff check .
$py -m ruff format --check . >/dev/null || { $py -m ruff format --check .; exit 1; }
export PYTHONHASHSEED=0 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ "$#" -eq 0 ]; then set -- -m "not slow and not gpu"; fi
exec $py -m pytest "$@"
