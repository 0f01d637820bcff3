"""Token table access for decoding: ``gmot.data.tokens.TokenTable`` when available, else a
minimal reader of the same ``tokens.txt`` format (``<symbol> <id>`` per line)."""

from __future__ import annotations

from pathlib import Path

# Symbols that never appear in decoded text (<unk> does, like gmot.data.tokens.TokenTable).
SPECIAL = ("<blk>", "<blank>", "<sos/eos>", "<eps>")


class SimpleTokenTable:
    """id <-> symbol map read from ``tokens.txt``; ``decode`` joins symbols without spaces."""

    def __init__(self, id2sym: dict[int, str]):
        self.id2sym = id2sym

    @classmethod
    def load(cls, path: str | Path) -> SimpleTokenTable:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"token table not found: {path}")
        id2sym = {}
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{path}:{n}: expected '<symbol> <id>'; got {line!r}")
            id2sym[int(parts[1])] = parts[0]
        return cls(id2sym)

    def __len__(self) -> int:
        return max(self.id2sym) + 1 if self.id2sym else 0

    def decode(self, ids: list[int]) -> str:
        out = []
        for i in ids:
            if i not in self.id2sym:
                raise ValueError(f"token id {i} not in the token table (size {len(self)})")
            s = self.id2sym[i]
            if s not in SPECIAL:
                out.append(s.replace("▁", " "))
        return "".join(out).strip()


def load_token_table(path: str | Path):
    """The project's TokenTable for ``path`` (falls back to :class:`SimpleTokenTable`)."""
    try:
        from gmot.data.tokens import TokenTable
    except ImportError:
        return SimpleTokenTable.load(path)
    return TokenTable.load(path)
