"""Helper for the end-to-end tests: ``gmot.training.train.main`` on the synthetic data.

Usage: python train_script.py EXP_DIR [train.py flags...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402

from gmot.training.train import main  # noqa: E402

TINY = [
    "--encoder-config", "tiny", "--decoder-dim", "32", "--joiner-dim", "32",
    "--gmot-plm-dim", str(synthetic.PLM_DIM), "--base-lr", "0.05", "--warm-step", "10",
    "--tensorboard", "0", "--seed", "3",
]  # fmt: skip

if __name__ == "__main__":
    exp = Path(sys.argv[1])
    (exp / "lang").mkdir(parents=True, exist_ok=True)
    synthetic.write_tokens(exp / "lang" / "tokens.txt")
    main(
        TINY + ["--exp-dir", str(exp), "--lang-dir", str(exp / "lang")] + sys.argv[2:],
        data_factory=synthetic.data_factory,
    )
