"""Character token table.

``tokens.txt`` has lines ``<sym> <id>``: ``<blk>`` 0, ``<sos/eos>`` 1, ``<unk>`` 2, then characters.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

BLANK = "<blk>"
SOS_EOS = "<sos/eos>"
UNK = "<unk>"
SPECIALS = (BLANK, SOS_EOS, UNK)


class OOVError(KeyError):
    """Raised by :meth:`TokenTable.encode` with ``oov="error"`` for characters not in the table."""


class TokenTable:
    """Bidirectional symbol <-> id map for character-level Mandarin ASR.

    Attributes: ``blank_id`` (0), ``sos_eos_id`` (1), ``unk_id`` (2).
    """

    blank_id = 0
    sos_eos_id = 1
    unk_id = 2

    def __init__(self, symbols: list[str]) -> None:
        if list(symbols[:3]) != list(SPECIALS):
            raise ValueError(f"the first three symbols must be {SPECIALS}, got {symbols[:3]}")
        if len(set(symbols)) != len(symbols):
            dup = [s for s, c in Counter(symbols).items() if c > 1]
            raise ValueError(f"duplicate symbols in token table: {dup[:10]}")
        for s in symbols:
            if not s or any(ch.isspace() for ch in s):
                raise ValueError(f"invalid token symbol {s!r} (empty or contains whitespace)")
        self.symbols = list(symbols)
        self.sym2id = {s: i for i, s in enumerate(self.symbols)}

    # construction / IO -------------------------------------------------------------------------
    @classmethod
    def build(cls, texts: Iterable[str], order: str = "frequency") -> TokenTable:
        """Table from transcripts: specials, then characters by descending frequency
        (ties by code point) when ``order="frequency"``, or by code point (``"codepoint"``)."""
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(ch for ch in t if not ch.isspace())
        for s in SPECIALS:
            counts.pop(s, None)
        if order == "frequency":
            chars = sorted(counts, key=lambda c: (-counts[c], c))
        elif order == "codepoint":
            chars = sorted(counts)
        else:
            raise ValueError(f"order must be 'frequency' or 'codepoint', got {order!r}")
        return cls(list(SPECIALS) + chars)

    @classmethod
    def load(cls, path: str | Path) -> TokenTable:
        """Read ``tokens.txt`` (``<sym> <id>`` per line, ids 0..V-1 in any order)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"token table {path} not found; create it with "
                "./prepare.sh --stage 2 --stop-stage 2"
            )
        pairs: dict[int, str] = {}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ValueError(f"{path}:{n}: expected '<sym> <id>', got {line!r}")
            i = int(parts[1])
            if i in pairs:
                raise ValueError(f"{path}:{n}: id {i} used twice ({pairs[i]!r}, {parts[0]!r})")
            pairs[i] = parts[0]
        if sorted(pairs) != list(range(len(pairs))):
            raise ValueError(f"{path}: ids must be 0..{len(pairs) - 1} without gaps")
        return cls([pairs[i] for i in range(len(pairs))])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{s} {i}\n" for i, s in enumerate(self.symbols)), encoding="utf-8")
        return path

    # mapping ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.symbols)

    def __contains__(self, sym: str) -> bool:
        return sym in self.sym2id

    def __getitem__(self, key: str | int) -> int | str:
        return self.symbols[key] if isinstance(key, int) else self.sym2id[key]

    def oov_chars(self, text: str) -> list[str]:
        """Characters of ``text`` (whitespace ignored) that are not in the table, in order."""
        return [ch for ch in text if not ch.isspace() and ch not in self.sym2id]

    def encode(self, text: str, oov: str = "unk") -> list[int]:
        """Character ids of ``text`` (spaces removed). ``oov``: ``"unk"`` maps unknown characters
        to ``<unk>`` with a warning, ``"error"`` raises :class:`OOVError`, ``"skip"`` drops them."""
        if oov not in ("unk", "error", "skip"):
            raise ValueError(f"oov must be 'unk', 'error' or 'skip', got {oov!r}")
        ids: list[int] = []
        missing: list[str] = []
        for ch in text:
            if ch.isspace():
                continue
            i = self.sym2id.get(ch)
            if i is None:
                missing.append(ch)
                if oov == "unk":
                    ids.append(self.unk_id)
                continue
            ids.append(i)
        if missing:
            if oov == "error":
                raise OOVError(f"characters not in the token table: {missing} (text {text!r})")
            logging.warning("OOV characters %s in %r mapped with policy %r", missing, text, oov)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Concatenate symbols of ``ids``, skipping ``<blk>`` and ``<sos/eos>``.

        Sentencepiece word-boundary marks (``▁``, BPE tables) become spaces.
        """
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.symbols):
                raise ValueError(f"token id {i} out of range [0, {len(self.symbols)})")
            if i in (self.blank_id, self.sos_eos_id):
                continue
            out.append(self.symbols[i])
        text = "".join(out)
        return text.replace("\u2581", " ").strip() if "\u2581" in text else text
