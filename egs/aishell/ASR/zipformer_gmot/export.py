#!/usr/bin/env python3
"""Export a aishell model: averaged pretrained.pt and ONNX encoder/decoder/joiner
(run from egs/aishell/ASR).

    ./zipformer_gmot/export.py --epoch 30 --avg 9 --use-averaged-model 1
    # a causal model (--causal 1): the streaming encoder (one chunk, states in and out)
    ./zipformer_gmot/export.py --epoch 30 --avg 9 --use-averaged-model 1 --streaming 1

All flags: `--help`; the code is gmot.export.export_main.
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[4]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.export.export_main import main

if __name__ == "__main__":
    main(exp_dir=Path("zipformer_gmot/exp"), lang_dir=Path("data/lang_char"))
