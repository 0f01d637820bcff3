#!/usr/bin/env bash
# How many CPU cores are free for a job starting now.
#   local/idle_cores.sh           # idle cores: the idle share of all CPUs over the last
#                                 # --window seconds (/proc/stat) times the usable cores,
#                                 # rounded, at least 1
#   local/idle_cores.sh --cores   # the cores this process may use (affinity), ignoring
#                                 # OMP_NUM_THREADS / OMP_THREAD_LIMIT, which GNU nproc obeys
# The 1-minute load average is not used: it lags by about a minute, so right after other work
# (a venv install, a decode) it reports busy cores on an idle machine.
set -eu
window=1
mode=idle
while [ $# -gt 0 ]; do
  case "$1" in
    --cores) mode=cores ;;
    --window) window=$2; shift ;;
    *) echo "$0: unknown option '$1' (known: --cores, --window SECONDS)" >&2; exit 1 ;;
  esac
  shift
done
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
if [ "$mode" = cores ] || [ ! -r /proc/stat ]; then
  echo "$cores"
  exit 0
fi
read -r _ a1 a2 a3 a4 a5 a6 a7 a8 _ < /proc/stat
sleep "$window"
read -r _ b1 b2 b3 b4 b5 b6 b7 b8 _ < /proc/stat
# fields: user nice system idle iowait irq softirq steal (jiffies, summed over all CPUs)
idle=$(( (b4 + b5) - (a4 + a5) ))
total=$(( (b1 + b2 + b3 + b4 + b5 + b6 + b7 + b8) - (a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8) ))
awk -v n="$cores" -v i="$idle" -v t="$total" \
  'BEGIN { x = (t > 0 ? n * i / t : n); k = int(x + 0.5); if (k > n) k = n; print (k < 1 ? 1 : k) }'
