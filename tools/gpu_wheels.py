"""Wheels carried to the lent GPU machine (no package index there): strip and check them.

``tools/gpu_wheels.sh`` downloads the cp312 wheels into ``.whl/`` and calls this helper:

* ``strip WHEEL...``: strips debug info from the shared libraries inside each wheel (rewriting
  its RECORD) when that shrinks it; POT 0.9.7.post1's ``ot/bsp`` extension ships 167 MB of
  DWARF (a 33 MB wheel), stripped it is a few MB. The code is unchanged (``strip
  --strip-debug`` keeps the symbol table), so the package imports and runs as published.
* ``check [--have FILE] WHEEL...``: lists each wheel's ``Requires-Dist`` for CPython 3.12 on
  Linux x86-64 (extras skipped) and flags those that neither another carried wheel nor the
  device's package list (FILE: names separated by commas, spaces or newlines; ``#`` starts
  a comment) provides.
  Exit status 1 when something is missing.

Usage::

    python tools/gpu_wheels.py strip .whl/pot-*.whl
    python tools/gpu_wheels.py check --have device-packages.txt .whl/*.whl
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from email.parser import Parser
from pathlib import Path

# the device: CPython 3.12 on Linux x86-64 (for evaluating environment markers)
DEVICE_ENV = {
    "python_version": "3.12",
    "python_full_version": "3.12.3",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "extra": "",
}


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def strip_wheel(path: Path) -> tuple[int, int]:
    """Strip debug info from the ``.so`` files in ``path`` in place; (old, new) size in bytes."""
    strip = shutil.which("strip")
    if strip is None:
        raise SystemExit("strip (binutils) not found")
    old_size = path.stat().st_size
    with zipfile.ZipFile(path) as zin:
        infos = zin.infolist()
        contents = {info.filename: zin.read(info.filename) for info in infos}
    changed = False
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in contents.items():
            if not re.search(r"\.so(\.[0-9]+)*$", name):
                continue
            lib = Path(tmp) / "lib.so"
            lib.write_bytes(data)
            subprocess.run([strip, "--strip-debug", str(lib)], check=True)
            new = lib.read_bytes()
            if len(new) < len(data):
                contents[name] = new
                changed = True
    if not changed:
        return old_size, old_size
    record_name = next(n for n in contents if re.fullmatch(r"[^/]+\.dist-info/RECORD", n))
    rows = list(csv.reader(io.StringIO(contents[record_name].decode())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        if row and row[0] in contents and row[0] != record_name:
            row = [row[0], _record_hash(contents[row[0]]), str(len(contents[row[0]]))]
        writer.writerow(row)
    contents[record_name] = out.getvalue().encode()
    tmp_path = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp_path, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in infos:  # same order and metadata; RECORD stays last
            zout.writestr(info, contents[info.filename], compress_type=zipfile.ZIP_DEFLATED)
    tmp_path.replace(path)
    return old_size, path.stat().st_size


def wheel_metadata(path: Path) -> tuple[str, list[str]]:
    """(normalised project name, Requires-Dist lines) of a wheel."""
    with zipfile.ZipFile(path) as z:
        meta_name = next(n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        msg = Parser().parsestr(z.read(meta_name).decode("utf-8"))
    return normalize(msg["Name"]), msg.get_all("Requires-Dist") or []


def _requirement_applies(req: str) -> str | None:
    """The required project's name if ``req`` applies on the device (no extra), else None."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover - pip's vendored copy
        from pip._vendor.packaging.requirements import Requirement

    r = Requirement(req)
    if r.marker is not None and not r.marker.evaluate(DEVICE_ENV):
        return None
    return normalize(r.name)


def check(wheels: list[Path], have_file: Path | None) -> int:
    have: set[str] = set()
    if have_file is not None:
        text = re.sub(r"#[^\n]*", "", have_file.read_text())  # comments
        have = {normalize(n) for n in re.split(r"[\s,]+", text) if n}
    carried = {}
    for w in wheels:
        name, reqs = wheel_metadata(w)
        if name in carried:
            print(f"two wheels of {name}: {carried[name][0].name} and {w.name}")
            return 1
        carried[name] = (w, reqs)
    missing = 0
    for name, (w, reqs) in sorted(carried.items()):
        size = w.stat().st_size / 2**20
        shadows = "  (also on the device: this version shadows it)" if name in have else ""
        print(f"{w.name}  ({size:.2f} MiB){shadows}")
        for req in reqs:
            dep = _requirement_applies(req)
            if dep is None:
                continue
            if dep in carried:
                where = "carried"
            elif dep in have:
                where = "on the device"
            elif have_file is None:
                where = "? (no device list given)"
            else:
                where = "MISSING"
                missing += 1
            print(f"    requires {req:50s} {where}")
    total = sum(w.stat().st_size for w in wheels) / 2**20
    print(f"{len(wheels)} wheels, {total:.2f} MiB; {missing} requirement(s) missing")
    return 1 if missing else 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("strip", help="strip debug info from the shared libraries in wheels")
    s.add_argument("wheels", nargs="+", type=Path)
    c = sub.add_parser("check", help="list requirements and flag unmet ones")
    c.add_argument("--have", type=Path, default=None, help="file of the device's package names")
    c.add_argument("wheels", nargs="+", type=Path)
    args = p.parse_args()
    if args.cmd == "strip":
        for w in args.wheels:
            old, new = strip_wheel(w)
            print(f"{w.name}: {old / 2**20:.2f} MiB -> {new / 2**20:.2f} MiB")
        return
    sys.exit(check(args.wheels, args.have))


if __name__ == "__main__":
    main()
