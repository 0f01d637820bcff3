#!/usr/bin/env python3
"""Cache PLM token features per cut (thin wrapper; see gmot/plm/compute_targets.py).

Example (from egs/<corpus>/ASR):
  ./local/compute_plm_targets.py --corpus hsk --manifest-dir data/manifests \
      --output-dir data/plm --plm-model data/plm/e5-small --layer -1 --batch-size 32 --device cpu
"""

import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.plm.compute_targets import main

if __name__ == "__main__":
    raise SystemExit(main())
