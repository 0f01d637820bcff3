#!/usr/bin/env python3
"""Lhotse cut manifests for an AISHELL-layout corpus (see gmot/data/manifests.py).

Example (from egs/<corpus>/ASR):
  ./local/prepare_manifests.py --corpus hsk --corpus-dir download/hsk --output-dir data/manifests
"""

import argparse
import logging

from gmot.data.manifests import prepare_aishell_cuts


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True, help="corpus name used in file names (hsk, aishell)")
    p.add_argument("--corpus-dir", required=True, help="directory containing data_aishell/")
    p.add_argument("--output-dir", default="data/manifests")
    a = p.parse_args()
    counts = prepare_aishell_cuts(a.corpus_dir, a.output_dir, a.corpus)
    logging.info("manifests done: %s", counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
