#!/usr/bin/env python3
"""Transcribe wav files with the ONNX graphs exported from a aishell model
(run from egs/aishell/ASR).

    ./zipformer_gmot/onnx_pretrained.py --onnx-dir zipformer_gmot/exp a.wav b.wav

All flags: `--help`; the code is gmot.export.onnx_pretrained_main.
"""

import sys
from pathlib import Path

try:
    import gmot  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`: use the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from gmot.export.onnx_pretrained_main import main

if __name__ == "__main__":
    main()
