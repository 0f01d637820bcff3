#!/usr/bin/env python3
"""Decode the aishell dev/test sets and compute the CER (run from egs/aishell/ASR).

    ./zipformer_gmot/decode.py --epoch 30 --avg 9 --decoding-method modified_beam_search

All flags: `./zipformer_gmot/decode.py --help`; the code is gmot.decoding.decode_main.
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[4]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.decoding.decode_main import main

if __name__ == "__main__":
    main(
        corpus="aishell",
        exp_dir=Path("zipformer_gmot/exp"),
        lang_dir=Path("data/lang_char"),
        manifest_dir=Path("data/manifests"),  # decodes its aishell_cuts_{dev,test}.jsonl.gz
    )
