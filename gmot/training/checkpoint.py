"""Moved to :mod:`gmot.checkpoint` (a lower layer, so that decoding and export need not import
training). This name stays for existing imports: it *is* that module."""

import sys

from gmot import checkpoint as _checkpoint

sys.modules[__name__] = _checkpoint
