#!/usr/bin/env python3
"""Synthesise the offline "hsk" Mandarin corpus in AISHELL-1 layout (no network).

Thin wrapper; see gmot/corpora/hsk/. Example (from egs/hsk/ASR):
  ./local/synth_hsk_corpus.py --output-dir download/hsk --num-train 3000 --seed 42
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.corpora.hsk import main

if __name__ == "__main__":
    raise SystemExit(main())
