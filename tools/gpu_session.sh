#!/usr/bin/env bash
# shellcheck disable=SC2317  # the step_* functions are called indirectly ("step_$2")
# Every GPU check and benchmark the open issues ask for, in one call on the lent GPU machine
# (bench/README.md "Running the GPU checks" says how to launch it and what comes back).
#
#   bash tools/gpu_session.sh          # on the device machine (python3 = its torch), OUT set
#   bash tools/gpu_session.sh --dry    # here, on the CPU: same steps, tiny sizes (plumbing test)
#
# Steps, in order (each under its own `timeout`; a failure does not stop the next one):
#   env          nvidia-smi, versions of python / torch / triton / torchaudio / transformers
#   wheels       install the wheels carried in .whl/ (tools/gpu_wheels.sh) into $SITE, import them,
#                python -m gmot.env
#   pytest       python -m pytest -m gpu over tests/ (junit XML beside the log)
#   gmot         bench/bench_gmot.py --repeat 20 --scaling (POT reference; on CUDA the default
#                --inner-kernel auto is the fused Triton Sinkhorn kernel)
#   gmot_torch   the same with --inner-kernel torch (eager torch inner loop), --repeat 10
#   gmot_compile the same with --inner-kernel torch --compile (torch.compile'd inner sweeps; the
#                fused kernel ignores --compile), --repeat 10
#   rnnt         bench/bench_rnnt.py, B=32 T=250 S=30 C=500,4336 prune range 5
#   zipformer    bench/bench_zipformer.py (600 s bf16 batch, Conformer reference)
#   train_step   bench/bench_train_step.py (medium, B=32 x 10 s, bf16, GM-OT on vs off)
# The whole run stays inside GMOT_GPU_BUDGET_S: a step gets at most the time left (less a
# reserve for the summary) and is skipped when under MIN_STEP_S is left, so the last (lowest
# priority) steps are the ones dropped. Logs go to $OUT (at most 8 files); the summary table
# (step -> exit code, seconds) and a digest of the figures are printed last.
#
# Environment:
#   OUT                    where logs go (the device tool sets it; default: a new temp dir)
#   GMOT_GPU_SESSION_DRY=1 same as --dry: CPU, tiny sizes, .venv/bin/python
#   GMOT_GPU_SESSION_PYTHON  the interpreter (default python3 on the device, .venv/bin/python dry)
#   GMOT_GPU_STEPS         comma list of steps to run (default: all; always in the order above;
#                          wheels is added when any step but env is listed)
#   GMOT_GPU_BUDGET_S      wall-clock budget of the whole script (default 450)
#   GMOT_GPU_LIMIT_<STEP>  one step's time limit in s (e.g. GMOT_GPU_LIMIT_PYTEST=240)
#   GMOT_GPU_PYTEST_ARGS   pytest selection (default: "-m gpu tests")
#   GMOT_GPU_SITE          where the wheels are installed (default /tmp/site; dry: a temp dir)
set -u -o pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1
self="$repo/tools/gpu_session.sh"

ALL_STEPS=env,wheels,pytest,gmot,gmot_torch,gmot_compile,rnnt,zipformer,train_step

usage() { sed -n '3,/^set -u/p' "$self" | sed '$d; s/^# \{0,1\}//'; }

# ---------------------------------------------------------------------------------------------
# step bodies (run as `gpu_session.sh --step NAME` under timeout, with the exported settings)
# ---------------------------------------------------------------------------------------------
x() { echo "+ $*"; "$@"; }  # log the command line, then run it

step_env() {
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); host: $(uname -srm); cpus: $(nproc)"
  free -g 2>/dev/null | head -2
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem,clocks.max.sm \
      --format=csv
  else
    echo "nvidia-smi: not found"
  fi
  "$PY" - <<'EOF'
import importlib
import os
import sys

print("python", sys.version.split()[0], sys.executable)
for name in ("torch", "triton", "torchaudio", "transformers", "tokenizers", "huggingface_hub",
             "numpy", "scipy", "pytest"):
    try:
        mod = importlib.import_module(name)
        print(f"{name:16s} {getattr(mod, '__version__', '?')}")
    except Exception as exc:  # report, do not stop
        print(f"{name:16s} NOT IMPORTABLE: {type(exc).__name__}: {exc}")
import torch

print("torch cuda build:", torch.version.cuda, "| cudnn:", torch.backends.cudnn.version())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device 0: {p.name}, {p.total_memory / 2**30:.1f} GiB, cc {p.major}.{p.minor}, "
          f"{p.multi_processor_count} SMs")
    x = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    torch.cuda.synchronize()
    print("bf16 matmul check:", float((x @ x).float().abs().mean()) > 0)
elif os.environ.get("GMOT_GPU_SESSION_DRY") != "1":
    sys.exit("CUDA is not available to torch")
else:
    print("CUDA not available (dry run)")
EOF
}

step_wheels() {
  local wheels=(.whl/*.whl)
  if [ ! -e "${wheels[0]}" ]; then
    echo "no .whl/*.whl carried (run tools/gpu_wheels.sh here and carry .whl)"
  elif ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    echo "the carried wheels are cp312; $("$PY" -V 2>&1) cannot use them: install skipped"
  else
    echo "installing ${#wheels[@]} wheels into $SITE"
    x "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "${wheels[@]}" || return
  fi
  # every third-party module that gmot or a test module imports at collection time
  "$PY" - <<'EOF' || return
import importlib
import sys

bad = 0
for name in ("ot", "ot.batch", "lhotse", "lilcom", "soundfile", "kaldialign", "transformers",
             "torchaudio", "sentencepiece", "tensorboard", "matplotlib", "scipy", "tqdm", "onnx",
             "onnxruntime", "triton"):
    try:
        mod = importlib.import_module(name)
        print(f"import {name:14s} ok  {getattr(mod, '__version__', '')}  {mod.__file__}")
    except Exception as exc:
        bad += 1
        print(f"import {name:14s} FAILED: {type(exc).__name__}: {exc}")
# optional: the pruned RNN-T reference packages (carried only when built for the device)
import torch
from gmot.transducer.backend import EXTERNAL_BACKENDS, backend_available, backend_runs_on

for name in EXTERNAL_BACKENDS:
    if backend_available(name):
        cuda = backend_runs_on(name, torch.device("cuda"))
        print(f"optional {name:14s} ok  with_cuda={cuda}")
    else:
        print(f"optional {name:14s} not usable (see the warning, if any)")
sys.exit(1 if bad else 0)
EOF
  x "$PY" -m gmot.env
}

step_pytest() {
  if [ "$DRY" != 1 ]; then
    "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)' \
      || { echo "CUDA not visible: the gpu tests would only be skipped"; return 3; }
  fi
  local args=(-q -rfEs -p no:cacheprovider --continue-on-collection-errors
              --junitxml "$OUT/2_pytest_junit.xml")
  # per-test limit where pytest-timeout is installed (it is on the device image)
  if "$PY" -c 'import pytest_timeout' 2>/dev/null; then args+=(--timeout 150); fi
  # shellcheck disable=SC2086  # GMOT_GPU_PYTEST_ARGS is a word list on purpose
  x "$PY" -m pytest "${args[@]}" ${GMOT_GPU_PYTEST_ARGS:--m gpu tests}
}

step_gmot() {  # extra arguments: options of bench_gmot.py; --repeat is the last given
  if [ "$DRY" = 1 ]; then
    x "$PY" bench/bench_gmot.py --device cpu --B 2 --Lt 6 --D 16 --iters 2x3 --threads 2 "$@" \
      --repeat 1 --warmup 0
  else
    x "$PY" bench/bench_gmot.py --device cuda --repeat 20 --scaling "$@"
  fi
}

step_gmot_torch() { step_gmot --inner-kernel torch --repeat 10; }

step_gmot_compile() { step_gmot --inner-kernel torch --compile --repeat 10; }

step_rnnt() {
  if [ "$DRY" = 1 ]; then
    x "$PY" bench/bench_rnnt.py --device cpu --B 2 --T 20 --S 4 --C 50,80 --joiner-dim 32 \
      --prune-range 5 --repeat 1 --warmup 0 --threads 2
  else
    x "$PY" bench/bench_rnnt.py --device cuda --B 32 --T 250 --S 30 --C 500,4336 \
      --joiner-dim 512 --prune-range 5 --repeat 20 --warmup 3
  fi
}

step_zipformer() {
  if [ "$DRY" = 1 ]; then
    x "$PY" bench/bench_zipformer.py --device cpu --model tiny --batch-seconds 2 --utt-seconds 1 \
      --dtype float32 --warmup 0 --repeat 1 --ref-dim 64 --ref-layers 2 --threads 2
  else
    x "$PY" bench/bench_zipformer.py --device cuda --model medium --batch-seconds 600 \
      --utt-seconds 10 --dtype bfloat16 --warmup 3 --repeat 10
  fi
}

step_train_step() {
  if [ "$DRY" = 1 ]; then
    x "$PY" bench/bench_train_step.py --device cpu --model tiny --batch-size 1 --seconds 2 \
      --plm-dim 32 --repeat 1 --dtype fp32
  else
    x "$PY" bench/bench_train_step.py --device cuda --model medium --batch-size 32 --seconds 10 \
      --repeat 5 --dtype bf16
  fi
}

if [ "${1:-}" = --step ]; then
  "step_$2"
  exit
fi

# ---------------------------------------------------------------------------------------------
# driver
# ---------------------------------------------------------------------------------------------
DRY=${GMOT_GPU_SESSION_DRY:-0}
for arg in "$@"; do
  case $arg in
    --dry) DRY=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$DRY" = 1 ]; then
  PY=${GMOT_GPU_SESSION_PYTHON:-$repo/.venv/bin/python}
  if [ -z "${GMOT_GPU_SITE:-}" ]; then
    SITE=$(mktemp -d /tmp/gpu_session_site.XXXXXX)
    trap 'rm -rf "$SITE"' EXIT  # the dry run's own install dir
  else
    SITE=$GMOT_GPU_SITE
  fi
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
else
  PY=${GMOT_GPU_SESSION_PYTHON:-python3}
  SITE=${GMOT_GPU_SITE:-/tmp/site}
fi
OUT=${OUT:-$(mktemp -d /tmp/gpu_session_out.XXXXXX)}
mkdir -p "$OUT" "$SITE"
STEPS=${GMOT_GPU_STEPS:-$ALL_STEPS}
BUDGET=${GMOT_GPU_BUDGET_S:-450}
RESERVE_S=15   # kept for the summary and packing
MIN_STEP_S=20  # a step is not started with less than this left

export DRY PY SITE OUT GMOT_GPU_SESSION_DRY=$DRY
export PYTHONPATH="$SITE:$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# POT would import jax and cupy (both on the device image) at `import ot`: slow, and jax can
# grab GPU memory; gmot and the benchmarks use only POT's numpy and torch backends.
export POT_BACKEND_DISABLE_JAX=1 POT_BACKEND_DISABLE_CUPY=1 POT_BACKEND_DISABLE_TENSORFLOW=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false

# step -> limit (s) and log file (logs are shared so that $OUT holds at most 8 files)
declare -A LIMIT=([env]=60 [wheels]=90 [pytest]=180 [gmot]=120 [gmot_torch]=90
                  [gmot_compile]=120 [rnnt]=150 [zipformer]=90 [train_step]=90)
declare -A LOG=([env]=1_env.log [wheels]=1_env.log [pytest]=2_pytest.log [gmot]=3_gmot.log
                [gmot_torch]=3_gmot.log [gmot_compile]=3_gmot.log [rnnt]=4_rnnt.log
                [zipformer]=5_zipformer_train.log [train_step]=5_zipformer_train.log)
if [ "$DRY" = 1 ]; then LIMIT[pytest]=300; fi  # the whole tests/ collection on 2 CPU cores

declare -a ROWS=()
t_start=$SECONDS
summary="$OUT/summary.txt"

write_summary() {
  {
    printf 'gpu_session: %s, %s, python %s, budget %ss, elapsed %ss\n' \
      "$([ "$DRY" = 1 ] && echo 'DRY RUN (cpu)' || echo device)" "$(date -u '+%F %T UTC')" \
      "$PY" "$BUDGET" "$((SECONDS - t_start))"
    printf '%-13s %-9s %5s %6s  %s\n' step status rc secs log
    printf '%s\n' "${ROWS[@]}"
  } > "$summary"
}

run_step() {
  local name=$1 log="$OUT/${LOG[$1]}" override="GMOT_GPU_LIMIT_${1^^}"
  local limit=${!override:-${LIMIT[$1]}}
  local left=$((BUDGET - (SECONDS - t_start) - RESERVE_S))
  if ((left < MIN_STEP_S)); then
    echo "===== [$name] skipped: ${left}s of the budget left" | tee -a "$log"
    ROWS+=("$(printf '%-13s %-9s %5s %6s  %s' "$name" skipped - 0 "${LOG[$name]}")")
    write_summary
    return
  fi
  ((limit > left)) && limit=$left
  echo "===== [$name] $(date -u +%T) limit ${limit}s" | tee -a "$log"
  local t0=$SECONDS
  timeout -k 10 "$limit" bash "$self" --step "$name" < /dev/null 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]} status=ok
  if ((rc == 124 || rc == 137)); then status=TIMEOUT; elif ((rc != 0)); then status=FAILED; fi
  echo "===== [$name] $status (exit $rc) after $((SECONDS - t0))s" | tee -a "$log"
  ROWS+=("$(printf '%-13s %-9s %5s %6s  %s' "$name" "$status" "$rc" "$((SECONDS - t0))" \
    "${LOG[$name]}")")
  write_summary
}

echo "gpu_session: $([ "$DRY" = 1 ] && echo DRY RUN || echo device) | python $PY | OUT $OUT" \
  "| steps $STEPS | budget ${BUDGET}s"
IFS=, read -r -a selected <<< "$STEPS"
IFS=, read -r -a known <<< "$ALL_STEPS"
for s in "${selected[@]}"; do
  [[ ,$ALL_STEPS, == *",$s,"* ]] || { echo "unknown step '$s' (known: $ALL_STEPS)" >&2; exit 2; }
done
# every step after env imports gmot and its dependencies: a fresh machine needs the wheels first
if [[ ,$STEPS, != *,wheels,* && -n ${STEPS//[,]/} && ,$STEPS, != ,env, ]]; then
  STEPS="wheels,$STEPS"
  echo "steps: wheels added (the other steps need the carried packages)"
fi
for s in "${known[@]}"; do  # always in the documented order
  [[ ,$STEPS, == *",$s,"* ]] && run_step "$s"
done

write_summary
echo
echo "===================== digest (full logs in $OUT:" \
  "$(find "$OUT" -maxdepth 1 -type f -printf '%f\n' | sort | tr '\n' ' ')) ========"
figures='^(FAILED|ERROR) |[0-9]+ (passed|failed|skipped|error)|POT/ours|ratio|ms   peak|^== '
figures+='|^device:|fwd\+bwd|GM-OT o|Error|error:'
for f in 2_pytest.log 3_gmot.log 4_rnnt.log 5_zipformer_train.log; do
  [ -f "$OUT/$f" ] || continue
  echo "--- $f"
  grep -E "$figures" "$OUT/$f" | grep -v '^=====' | head -n 60
done
echo
cat "$summary"

# keep $OUT inside the tool's limits: at most 8 files of at most 16 MiB each
for f in "$OUT"/*; do
  if [ -f "$f" ] && [ "$(stat -c %s "$f")" -gt $((15 * 2**20)) ]; then
    { head -c $((2 * 2**20)) "$f"; printf '\n[... cut by gpu_session.sh ...]\n'
      tail -c $((12 * 2**20)) "$f"; } > "$f.cut" && mv "$f.cut" "$f"
  fi
done
n_files=$(find "$OUT" -type f | wc -l)
if ((n_files > 8)); then
  (cd "$OUT" && find . -type f ! -name summary.txt ! -name logs.tar.gz -print0 \
    | tar --null -czf logs.tar.gz --remove-files -T -)
fi
fail=0
for row in "${ROWS[@]}"; do
  read -r _ status _ <<< "$row"
  [ "$status" = ok ] || fail=1
done
exit "$fail"
