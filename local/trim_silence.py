#!/usr/bin/env python3
"""Trim the synthesiser's silence padding off the hsk training cuts (prepare.sh --trim-silence).

Rewrites the cut manifest in place: each cut is cut to its speech plus --margin seconds per
side (gmot.corpora.hsk.trim; the padding is re-drawn from the corpus's --seed, so it is exact).
Example:
  ./local/trim_silence.py --cuts data/manifests/hsk_cuts_train.jsonl.gz --seed 42 --margin 0.05
"""

import argparse
import logging
import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.corpora.hsk.trim import trim_silence


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cuts", required=True, help="cut manifest to trim (rewritten in place)")
    p.add_argument("--seed", type=int, required=True, help="the seed the corpus was made with")
    p.add_argument("--margin", type=float, default=0.05, help="silence kept per side (seconds)")
    a = p.parse_args()
    from lhotse import CutSet, load_manifest

    path = Path(a.cuts)
    if not path.is_file():
        p.error(f"no cut manifest at {path}")
    out, _, _ = trim_silence(load_manifest(path), a.seed, a.margin)
    tmp = path.with_name(path.name + ".tmp.jsonl.gz")
    CutSet.from_cuts(out).to_file(tmp)
    tmp.replace(path)  # atomic: a killed run leaves the untrimmed manifest
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
