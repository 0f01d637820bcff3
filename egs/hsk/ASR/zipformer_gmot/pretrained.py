#!/usr/bin/env python3
"""Transcribe wav files with a hsk model, no manifests needed (run from egs/hsk/ASR).

    ./zipformer_gmot/pretrained.py --checkpoint zipformer_gmot/exp/pretrained.pt \\
        --tokens data/lang_char/tokens.txt a.wav b.wav
    # a causal model, chunk by chunk with partial results
    ./zipformer_gmot/pretrained.py --checkpoint zipformer_gmot/exp/pretrained.pt \\
        --tokens data/lang_char/tokens.txt --streaming 1 a.wav

All flags: `--help`; the code is gmot.decoding.pretrained_main.
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[4]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.decoding.pretrained_main import main

if __name__ == "__main__":
    main(tokens=Path("data/lang_char/tokens.txt"))
