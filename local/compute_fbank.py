#!/usr/bin/env python3
"""Optional: precompute 80-bin fbank for cut manifests (on-the-fly fbank is the default).

Writes <output-dir>/<corpus>_cuts_{split}.jsonl.gz with features stored as lilcom chunks.
Example: ./local/compute_fbank.py --corpus hsk --manifest-dir data/manifests --output-dir data/fbank
"""

import argparse
import logging
import sys
from pathlib import Path

from lhotse import Fbank, FbankConfig, LilcomChunkyWriter, load_manifest_lazy

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.data.manifests import SPLITS, cuts_path


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--manifest-dir", default="data/manifests")
    p.add_argument("--output-dir", default="data/fbank")
    p.add_argument("--num-jobs", type=int, default=1)
    a = p.parse_args()
    out = Path(a.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        cuts = load_manifest_lazy(cuts_path(a.manifest_dir, a.corpus, split)).to_eager()
        cuts = cuts.compute_and_store_features(
            extractor=Fbank(FbankConfig(num_mel_bins=80)),
            storage_path=out / f"{a.corpus}_feats_{split}",
            num_jobs=a.num_jobs,
            storage_type=LilcomChunkyWriter,
        )
        cuts.to_file(out / f"{a.corpus}_cuts_{split}.jsonl.gz")
        logging.info("fbank %s: %d cuts", split, len(cuts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
