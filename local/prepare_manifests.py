#!/usr/bin/env python3
"""Lhotse cut manifests of a corpus (prepare.sh stage 1), read by its layout (gmot.data.layouts).

Example (from egs/<corpus>/ASR):
  ./local/prepare_manifests.py --corpus hsk --corpus-dir download/hsk --output-dir data/manifests

The layout (--layout, default aishell: data_aishell/wav/<split>/<speaker>/<utt>.wav plus the
transcript) reports what it skipped; the aishell layout also counts transcript lines whose
utterance has no wav file in any split, with examples. --print-inputs prints the line prepare.sh
records in the stage-1 marker (what the manifests depend on) and writes nothing.
"""

import argparse
import logging
import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.data.layouts import available, get_layout


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", help="corpus name used in file names (hsk, aishell); required")
    p.add_argument("--corpus-dir", required=True, help="the corpus (aishell: holds data_aishell/)")
    p.add_argument(
        "--layout",
        default="aishell",
        help=f"corpus layout: one of {', '.join(available())} or the path of a layout .py file",
    )
    p.add_argument("--output-dir", default="data/manifests", help="where the cut manifests go")
    p.add_argument(
        "--splits",
        default="train,dev,test",
        help="comma-separated splits to read (e.g. 'test' for a set from synth_text_set.py)",
    )
    p.add_argument(
        "--print-inputs",
        action="store_true",
        help="print what the manifests depend on (the stage-1 marker's line) and exit",
    )
    a = p.parse_args()
    layout = get_layout(a.layout)
    if a.print_inputs:
        print(layout.inputs(a.corpus_dir))
        return 0
    if not a.corpus:
        p.error("--corpus is required")
    splits = tuple(s for s in a.splits.split(",") if s)
    counts = layout.prepare_cuts(a.corpus_dir, a.output_dir, a.corpus, splits)
    logging.info("manifests done: %s", counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
