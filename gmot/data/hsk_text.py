"""Text for the embedded "hsk" corpus: a fixed character set, natural and sampled sentences.

The character set is that of the HSK 3.0 sentences up to a level (301 characters at level 1).
Two kinds of sentences use only those characters:

* **natural**: every HSK sentence (any level) whose characters all lie in the set, with the
  package's tone-numbered pinyin (465 sentences of 3-16 characters at level 1);
* **sampled**: word sequences drawn from a word-bigram model estimated on the word runs of all
  HSK sentences that stay inside the set (each word keeps the reading it has in its source
  sentences, so polyphones such as 了/得/觉 are read in context).

Dev and test use held-out natural sentences; the bigram model is estimated without them and a
sampled sentence equal to one of them is rejected, so no dev/test sentence occurs in training.
Many thousand distinct training sentences keep the prediction network from learning the training
text by heart, which a few hundred sentences read many times invite.

Text with no pinyin (any other Chinese text over the same characters) is read with
:func:`pinyin_of` (pypinyin, tone numbers, 5 for the neutral tone).
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

__all__ = [
    "Sentence",
    "WordBigram",
    "charset",
    "cjk_only",
    "hsk_word_runs",
    "natural_sentences",
    "pinyin_of",
]

_NON_CJK = re.compile(r"[^\u4e00-\u9fff]")
_BOS, _EOS = "<s>", "</s>"


def cjk_only(text: str) -> str:
    """``text`` with every character outside the CJK unified ideographs removed."""
    return _NON_CJK.sub("", text)


@dataclass(frozen=True)
class Sentence:
    """One sentence: ``words`` (CJK only, no spaces inside a word) and one tone-numbered
    syllable per character in ``pinyin`` (e.g. ``("ni3", "hao3")``); ``source`` is an HSK id or
    ``"sampled"``."""

    words: tuple[str, ...]
    pinyin: tuple[str, ...]
    source: str

    @property
    def chars(self) -> str:
        return "".join(self.words)

    @property
    def text(self) -> str:
        """Words separated by spaces, as in AISHELL-1's transcript."""
        return " ".join(self.words)

    def __post_init__(self) -> None:
        if len(self.pinyin) != len(self.chars):
            raise ValueError(
                f"{self.source}: {len(self.pinyin)} syllables for {len(self.chars)} characters "
                f"({self.chars!r})"
            )


def _hsk_records() -> list[dict]:
    import hsk_sentences_audio as hsk

    return list(hsk.load_sentences())


def _parse(rec: dict) -> tuple[list[str], list[str]] | None:
    """(words, syllables) of one HSK record, or None when the pinyin does not align."""
    chars = cjk_only(rec["chinese"])
    syl = rec["pinyin_numbered"].split()
    if len(syl) != len(chars) or not chars:
        return None
    words = [w for w in (cjk_only(t["word"]) for t in rec.get("tokens", [])) if w]
    if "".join(words) != chars:
        words = list(chars)
    return words, syl


def charset(max_level: int) -> set[str]:
    """The characters of all HSK sentences of level <= ``max_level`` (1..6)."""
    if not 1 <= max_level <= 6:
        raise ValueError(f"max_level must be in 1..6, got {max_level}")
    return {
        ch for r in _hsk_records() if r["hsk_level"] <= max_level for ch in cjk_only(r["chinese"])
    }


def natural_sentences(chars: set[str], min_chars: int, max_chars: int) -> list[Sentence]:
    """HSK sentences of any level written only with ``chars``, ``min_chars..max_chars`` long,
    in the package's order (duplicates of one text keep the first)."""
    out, seen = [], set()
    for rec in _hsk_records():
        parsed = _parse(rec)
        if parsed is None:
            continue
        words, syl = parsed
        text = "".join(words)
        if not (min_chars <= len(text) <= max_chars) or not set(text) <= chars or text in seen:
            continue
        seen.add(text)
        out.append(Sentence(tuple(words), tuple(syl), rec["id"]))
    return out


def hsk_word_runs(chars: set[str], exclude: set[str]) -> list[WordRun]:
    """Maximal runs of consecutive words of an HSK sentence whose characters all lie in
    ``chars``; each word comes with its syllables (space-joined), each run says whether it
    starts and ends its sentence. Sentences whose text is in ``exclude`` (held-out text,
    characters only) are left out entirely."""
    runs: list[WordRun] = []
    for rec in _hsk_records():
        parsed = _parse(rec)
        if parsed is None or "".join(parsed[0]) in exclude:
            continue
        words, syl = parsed
        cur: list[tuple[str, str]] = []
        pos, first = 0, True
        for w in words:
            reading = " ".join(syl[pos : pos + len(w)])
            pos += len(w)
            if set(w) <= chars:
                if not cur:
                    first = pos == len(w)
                cur.append((w, reading))
            elif cur:
                runs.append(WordRun(tuple(cur), first, False))
                cur = []
        if cur:
            runs.append(WordRun(tuple(cur), first, True))
    return runs


@dataclass(frozen=True)
class WordRun:
    """Consecutive (word, reading) pairs of one sentence, and whether they start / end it."""

    words: tuple[tuple[str, str], ...]
    starts: bool
    ends: bool


class WordBigram:
    """A maximum-likelihood word-bigram model over word runs. Only runs that start (end) their
    sentence give sentence-start (end) counts, so sampled sentences begin and end as HSK
    sentences do. Each word is sampled with its most frequent reading in the source text.

    ``flatten`` (0 < flatten <= 1) raises every transition count to that power before sampling:
    1 is the maximum-likelihood model, smaller values give rare continuations (and so rare
    characters) more weight while keeping only transitions seen in the HSK text.

    ``backoff`` (0 <= backoff < 1) is the chance that a word after the first is drawn from the
    word-unigram distribution (counts raised to ``flatten`` as well) instead of following the
    previous word: word pairs that the HSK text never has then occur too, as they do in other
    text. Sentences still start with a word that starts an HSK sentence and end after a word
    that ends one."""

    def __init__(self, runs: list[WordRun], flatten: float = 1.0, backoff: float = 0.0) -> None:
        if not 0.0 < flatten <= 1.0:
            raise ValueError(f"flatten must be in (0, 1], got {flatten}")
        if not 0.0 <= backoff < 1.0:
            raise ValueError(f"backoff must be in [0, 1), got {backoff}")
        if not any(r.starts for r in runs) or not any(r.ends for r in runs):
            raise ValueError("WordBigram needs runs that start and end a sentence")
        follow: dict[str, Counter] = defaultdict(Counter)
        readings: dict[str, Counter] = defaultdict(Counter)
        for run in runs:
            words = [w for w, _ in run.words]
            for w, r in run.words:
                readings[w][r] += 1
            for a, b in zip(words, words[1:]):
                follow[a][b] += 1
            if run.starts:
                follow[_BOS][words[0]] += 1
            if run.ends:
                follow[words[-1]][_EOS] += 1
        self._next = {a: (list(c), [n**flatten for n in c.values()]) for a, c in follow.items()}
        self.reading = {w: c.most_common(1)[0][0] for w, c in readings.items()}
        self.backoff = backoff
        self._words = list(readings)
        self._word_weights = [sum(readings[w].values()) ** flatten for w in self._words]

    @property
    def num_words(self) -> int:
        return len(self.reading)

    def sample(
        self, rng: random.Random, min_chars: int, max_chars: int, tries: int = 50
    ) -> Sentence:
        """One sentence of ``min_chars..max_chars`` characters (rejection sampling)."""
        for _ in range(tries):
            words: list[str] = []
            prev, n = _BOS, 0
            while n <= max_chars and prev in self._next:
                if self.backoff and prev != _BOS and rng.random() < self.backoff:
                    cand, weights = self._words, self._word_weights
                else:
                    cand, weights = self._next[prev]
                prev = rng.choices(cand, weights)[0]
                if prev == _EOS:
                    break
                words.append(prev)
                n += len(prev)
            if prev == _EOS and min_chars <= n <= max_chars:
                syl = tuple(s for w in words for s in self.reading[w].split())
                return Sentence(tuple(words), syl, "sampled")
        raise RuntimeError(
            f"no sentence of {min_chars}-{max_chars} characters in {tries} draws; widen the range"
        )


def pinyin_of(text: str) -> tuple[str, ...]:
    """Tone-numbered pinyin (neutral tone 5) of a CJK-only string, one syllable per character,
    as pypinyin reads it in context (no tone sandhi applied)."""
    from pypinyin import Style, lazy_pinyin

    chars = cjk_only(text)
    if chars != text.replace(" ", ""):
        raise ValueError(f"pinyin_of takes Chinese characters only, got {text!r}")
    syl = lazy_pinyin(chars, style=Style.TONE3, neutral_tone_with_five=True, errors="ignore")
    if len(syl) != len(chars):
        raise ValueError(
            f"pypinyin gave {len(syl)} syllables for {len(chars)} characters: {text!r}"
        )
    return tuple(syl)
