"""Process-independent seeds derived from names (cut ids, utterance ids).

Python's ``hash(str)`` changes between processes (``PYTHONHASHSEED``); the data pipeline and the
corpus synthesisers need the same seed for the same name in every worker and every run.
"""

from __future__ import annotations

__all__ = ["hash_str"]


def hash_str(s: str) -> int:
    """Stable (process-independent) 32-bit FNV-1a hash of ``s``'s UTF-8 bytes, in ``[0, 2^32)``.

    Used for per-utterance and per-batch seeds; the same string gives the same value in every
    process and Python version.
    """
    h = 2166136261
    for b in s.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h
