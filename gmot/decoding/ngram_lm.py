"""A token n-gram language model for n-best rescoring: trained on transcripts, stored as ARPA.

The model is a backoff n-gram over the token table's symbols (characters for the hsk and
AISHELL recipes) with sentence boundaries ``<s>`` / ``</s>``. :func:`train_ngram` estimates it
with interpolated absolute discounting: for a history ``h`` seen ``c(h)`` times with ``t(h)``
distinct successors,

    p(w | h) = max(c(h, w) - D, 0) / c(h) + D * t(h) / c(h) * p(w | h')

where ``h'`` drops the oldest token and the order-0 distribution is uniform over the
vocabulary plus ``</s>``. An interpolated model is exactly a backoff model whose stored
probability for a seen n-gram is the interpolated one and whose backoff weight for ``h`` is
``D * t(h) / c(h)``, so :meth:`NgramLm.write_arpa` writes standard ARPA that
:meth:`NgramLm.read_arpa` (and tools such as KenLM) read back; ARPA files made by other tools
(SRILM, KenLM's lmplz) load too.

``NgramLmScorer`` gives an LM the scorer interface of :mod:`gmot.decoding.rescoring`, so
``modified_beam_search_ctc_rescoring --lm-path ... --lm-scale ...`` adds its log-probability
(natural log, ``</s>`` included) to each hypothesis's score, and the token-LM interface of
:mod:`gmot.decoding.transducer_search` (``next_log_probs``), so greedy and modified beam search
fuse it frame by frame (``--lm-scale`` with those methods). Decoding needs no PLM and no LM;
this is an option.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from gmot.checkpoint import atomic_write

__all__ = ["NgramLm", "NgramLmScorer", "train_ngram", "BOS", "EOS", "UNK"]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
_LN10 = math.log(10.0)


class NgramLm:
    """A backoff n-gram model: ``probs[ngram]`` and ``backoffs[history]`` are log10 values.

    Args:
      order: the longest n-gram (1 = unigram).
      probs: n-gram tuple (1 to ``order`` symbols) -> log10 p(last | rest).
      backoffs: history tuple -> log10 backoff weight (absent: 0, i.e. weight 1).
    """

    def __init__(
        self,
        order: int,
        probs: dict[tuple[str, ...], float],
        backoffs: dict[tuple[str, ...], float],
    ) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not any(len(k) == 1 for k in probs):
            raise ValueError("an n-gram model needs unigrams")
        self.order = order
        self.probs = probs
        self.backoffs = backoffs
        # unseen symbols: <unk>'s probability when the model has one, else a floor of 1e-10
        self._unk = probs.get((UNK,), -10.0)

    def log10_prob(self, history: Sequence[str], word: str) -> float:
        """log10 p(word | the last ``order - 1`` symbols of ``history``), with backoff."""
        h = tuple(history[len(history) - (self.order - 1) :]) if self.order > 1 else ()
        total = 0.0
        while True:
            p = self.probs.get(h + (word,))
            if p is not None:
                return total + p
            if not h:
                return total + self._unk
            total += self.backoffs.get(h, 0.0)
            h = h[1:]

    def log_prob(self, tokens: Sequence[str]) -> float:
        """Natural-log probability of the sentence ``tokens`` followed by ``</s>`` (after
        ``<s>``)."""
        hist: list[str] = [BOS]
        total = 0.0
        for w in list(tokens) + [EOS]:
            total += self.log10_prob(hist, w)
            hist.append(w)
        return total * _LN10

    # ------------------------------------------------------------------------------ ARPA I/O
    def write_arpa(self, path: str | Path) -> Path:
        """Write the model as ARPA text (log10 values) to ``path``, atomically
        (:func:`gmot.checkpoint.atomic_write`)."""
        by_order: dict[int, list[tuple[str, ...]]] = defaultdict(list)
        for k in self.probs:
            by_order[len(k)].append(k)
        lines = ["", "\\data\\"]
        lines += [f"ngram {n}={len(by_order[n])}" for n in range(1, self.order + 1)]
        for n in range(1, self.order + 1):
            lines += ["", f"\\{n}-grams:"]
            for k in sorted(by_order[n]):
                row = f"{self.probs[k]:.6f}\t{' '.join(k)}"
                if n < self.order and k in self.backoffs:
                    row += f"\t{self.backoffs[k]:.6f}"
                lines.append(row)
        lines += ["", "\\end\\", ""]
        text = "\n".join(lines).encode("utf-8")
        return atomic_write(path, lambda f: f.write(text))

    @classmethod
    def read_arpa(cls, path: str | Path) -> NgramLm:
        """Load an ARPA file; a malformed line raises ``ValueError`` naming file and line."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"n-gram LM {path} does not exist")
        probs: dict[tuple[str, ...], float] = {}
        backoffs: dict[tuple[str, ...], float] = {}
        order, section = 0, None
        with path.open(encoding="utf-8") as f:
            for lineno, raw in enumerate(f, 1):
                line = raw.strip()
                if not line or line == "\\data\\" or line.startswith("ngram "):
                    continue
                if line == "\\end\\":
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    section = int(line[1:].split("-")[0])
                    order = max(order, section)
                    continue
                if section is None:
                    raise ValueError(f"{path}:{lineno}: n-gram line before any \\N-grams: header")
                parts = line.split()
                if len(parts) not in (section + 1, section + 2):
                    raise ValueError(
                        f"{path}:{lineno}: expected log10 prob, {section} symbols and an "
                        f"optional backoff, got {line!r}"
                    )
                try:
                    key = tuple(parts[1 : section + 1])
                    probs[key] = float(parts[0])
                    if len(parts) == section + 2:
                        backoffs[key] = float(parts[-1])
                except ValueError as e:
                    raise ValueError(f"{path}:{lineno}: {e}") from None
        if not probs:
            raise ValueError(f"{path}: no n-grams found (not an ARPA file?)")
        return cls(order, probs, backoffs)


def train_ngram(
    sentences: Iterable[Sequence[str]],
    order: int = 3,
    discount: float = 0.75,
    vocab: Iterable[str] = (),
) -> NgramLm:
    """Estimate an interpolated absolute-discounting n-gram model (module docstring).

    Args:
      sentences: token sequences (e.g. the characters of each training transcript).
      order: the longest n-gram, >= 1.
      discount: D in (0, 1).
      vocab: symbols that may be absent from ``sentences`` (e.g. the whole token table): they
        get a unigram of their share of the discounted mass instead of the unseen floor.
    """
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    if not 0.0 < discount < 1.0:
        raise ValueError(f"discount must be in (0, 1), got {discount}")
    counts: Counter[tuple[str, ...]] = Counter()
    n_sent = 0
    for sent in sentences:
        seq = [BOS] + list(sent) + [EOS]
        n_sent += 1
        for i in range(1, len(seq)):
            for n in range(1, order + 1):
                if i - n + 1 < 0:
                    break
                counts[tuple(seq[i - n + 1 : i + 1])] += 1
    if not n_sent:
        raise ValueError("no training sentences for the n-gram LM")
    hist_count: Counter[tuple[str, ...]] = Counter()
    hist_types: Counter[tuple[str, ...]] = Counter()
    for k, c in counts.items():
        hist_count[k[:-1]] += c
        hist_types[k[:-1]] += 1
    # symbols and </s>, never <s>
    symbols = sorted({k[0] for k in counts if len(k) == 1} | (set(vocab) - {BOS}))
    uniform = 1.0 / len(symbols)

    def interp(k: tuple[str, ...]) -> float:
        """p(k[-1] | k[:-1]), interpolated down to the uniform distribution."""
        lower = interp(k[1:]) if len(k) > 1 else uniform
        h = k[:-1]
        c_h = hist_count.get(h, 0)
        if c_h == 0:
            return lower
        return max(counts.get(k, 0) - discount, 0.0) / c_h + discount * hist_types[h] / c_h * lower

    probs = {k: math.log10(interp(k)) for k in counts}
    for w in symbols:  # vocabulary symbols never seen in the text
        probs.setdefault((w,), math.log10(interp((w,))))
    probs[(BOS,)] = -99.0  # <s> is a history only (ARPA convention)
    backoffs = {
        h: math.log10(discount * hist_types[h] / hist_count[h])
        for h in hist_count
        if 0 < len(h) < order
    }
    return NgramLm(order, probs, backoffs)


class NgramLmScorer:
    """An n-gram LM with the scorer interface of :mod:`gmot.decoding.rescoring`.

    ``score(encoder_out, encoder_out_lens, token_ids)`` ignores the audio and returns (N,)
    float64 natural-log probabilities of each ``token_ids[n]`` (mapped to symbols with
    ``id_to_symbol``) followed by ``</s>``.
    """

    def __init__(self, lm: NgramLm, id_to_symbol: Sequence[str] | dict[int, str]) -> None:
        self.lm = lm
        self.id_to_symbol = id_to_symbol
        self._next: dict[tuple[str, ...], torch.Tensor] = {}

    def next_log_probs(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """(N, V) float32 natural-log probabilities of every token id (V = the table's size)
        after each history of token ids (``<s>`` is prepended; only the last ``order - 1``
        tokens matter, and the rows are cached by them). Ids whose symbol the LM does not know
        get its ``<unk>`` probability (or 1e-10)."""
        k = self.lm.order - 1
        syms = [self.id_to_symbol[i] for i in range(len(self.id_to_symbol))]
        rows = []
        for h in histories:
            # the last order - 1 symbols of <s> + history: all that log10_prob reads
            if k == 0:
                key: tuple[str, ...] = ()
            elif len(h) >= k:
                key = tuple(self.id_to_symbol[i] for i in h[len(h) - k :])
            else:
                key = (BOS, *(self.id_to_symbol[i] for i in h))
            row = self._next.get(key)
            if row is None:
                row = torch.tensor(
                    [self.lm.log10_prob(key, w) * _LN10 for w in syms], dtype=torch.float32
                )
                self._next[key] = row
            rows.append(row)
        if not rows:
            return torch.zeros(0, len(self.id_to_symbol))
        return torch.stack(rows)

    def score(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        token_ids: list[list[int]],
    ) -> torch.Tensor:
        out = [self.lm.log_prob([self.id_to_symbol[i] for i in ids]) for ids in token_ids]
        return torch.tensor(out, dtype=torch.float64)
