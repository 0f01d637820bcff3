#!/usr/bin/env python3
"""Synthesise a test set from any Chinese text file with espeak-ng, in AISHELL-1 layout.

Thin wrapper; see gmot/corpora/hsk/ (plan_text_set). Example (from egs/hsk/ASR):
  ./local/synth_text_set.py --text-file my_sentences.txt --output-dir download/heldout
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.corpora.hsk import main_text_set

if __name__ == "__main__":
    raise SystemExit(main_text_set())
