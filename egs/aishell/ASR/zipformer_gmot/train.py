#!/usr/bin/env python3
"""Train the Zipformer + GM-OT model on AISHELL-1 (run from egs/aishell/ASR).

    ./zipformer_gmot/train.py --world-size 2 --num-epochs 60 --exp-dir zipformer_gmot/exp \\
        --gmot-loss-scale 0.1 --max-duration 1000

All flags: `./zipformer_gmot/train.py --help`; the code is gmot.training.train.
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[4]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.training.train import main

if __name__ == "__main__":
    main(
        defaults={
            "corpus": "aishell",
            "encoder_config": "medium",
            "num_epochs": 60,
            "lr_epochs": 18.0,
            "exp_dir": Path("zipformer_gmot/exp"),
            "lang_dir": Path("data/lang_char"),
            "manifest_dir": Path("data/manifests"),
            "plm_manifest_dir": Path("data/plm"),
        }
    )
