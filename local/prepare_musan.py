#!/usr/bin/env python3
"""Optional: MUSAN noise/music cuts (for --enable-musan) from a local MUSAN copy.

Writes <output-dir>/musan_cuts.jsonl.gz (music + noise, cut into 5 s windows; speech excluded).
Example: ./local/prepare_musan.py --musan-dir download/musan --output-dir data/manifests
"""

import argparse
import logging
from pathlib import Path

from lhotse import CutSet
from lhotse.recipes import prepare_musan


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--musan-dir", required=True)
    p.add_argument("--output-dir", default="data/manifests")
    a = p.parse_args()
    if not Path(a.musan_dir).is_dir():
        raise SystemExit(f"MUSAN directory {a.musan_dir} not found (https://www.openslr.org/17/)")
    m = prepare_musan(a.musan_dir, parts=("music", "noise"))
    cuts = None
    for part in ("music", "noise"):
        c = CutSet.from_manifests(recordings=m[part]["recordings"]).cut_into_windows(5.0)
        c = c.filter(lambda x: x.duration > 4.9)
        cuts = c if cuts is None else cuts + c
    out = Path(a.output_dir) / "musan_cuts.jsonl.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    cuts.to_file(out)
    logging.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
