#!/usr/bin/env python3
"""Optional: precompute 80-bin fbank (+ 3 pitch features with --pitch 1) for cut manifests
(on-the-fly features are the default).

Writes <output-dir>/<corpus>_cuts_{split}.jsonl.gz with features stored as lilcom chunks.
Example: ./local/compute_fbank.py --corpus hsk --manifest-dir data/manifests --output-dir data/fbank
"""

import argparse
import logging
import sys
from pathlib import Path

from lhotse import LilcomChunkyWriter, load_manifest_lazy

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.cli import str2bool
from gmot.data.manifests import SPLITS, cuts_path
from gmot.data.pitch import feature_kind, input_dim, make_extractor


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--manifest-dir", default="data/manifests")
    p.add_argument("--output-dir", default="data/fbank")
    p.add_argument("--num-jobs", type=int, default=1)
    p.add_argument(
        "--pitch",
        type=str2bool,
        default=False,
        help="1: append 3 pitch features (gmot.data.pitch) to the 80 bins; train with --pitch 1",
    )
    a = p.parse_args()
    dim = input_dim(a.pitch)
    out = Path(a.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        cuts = load_manifest_lazy(cuts_path(a.manifest_dir, a.corpus, split)).to_eager()
        cuts = cuts.compute_and_store_features(
            extractor=make_extractor(dim),
            storage_path=out / f"{a.corpus}_feats_{split}",
            num_jobs=a.num_jobs,
            storage_type=LilcomChunkyWriter,
        )
        cuts.to_file(out / f"{a.corpus}_cuts_{split}.jsonl.gz")
        logging.info("%s %s: %d cuts", feature_kind(dim), split, len(cuts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
