#!/usr/bin/env python3
"""Cache PLM token features per cut (thin wrapper; see gmot/plm/compute_targets.py).

Example (from egs/<corpus>/ASR):
  ./local/compute_plm_targets.py --corpus hsk --manifest-dir data/manifests \
      --output-dir data/plm --plm-model data/plm/e5-small --layer -1 --batch-size 32 --device cpu
"""

from gmot.plm.compute_targets import main

if __name__ == "__main__":
    raise SystemExit(main())
