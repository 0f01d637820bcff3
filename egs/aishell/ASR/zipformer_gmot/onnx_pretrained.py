#!/usr/bin/env python3
"""Transcribe wav files with the ONNX graphs exported from a aishell model
(run from egs/aishell/ASR).

    ./zipformer_gmot/onnx_pretrained.py --onnx-dir zipformer_gmot/exp a.wav b.wav

A streaming export (export.py --streaming 1) is decoded chunk by chunk with partial results.

All flags: `--help`; the code is gmot.export.onnx_pretrained_main.
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[4]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.export.onnx_pretrained_main import main

if __name__ == "__main__":
    main()
