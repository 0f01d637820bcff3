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

:func:`select_text` puts the two together: the sentences of each split, with the sampled
training text evened out over the characters (:func:`balance_by_coverage`) as a
:class:`TextBalance` says: that dataclass holds the three options and their defaults, and the
synthesiser's ``--text-flatten``, ``--text-backoff`` and ``--coverage-target`` flags are made
from it.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from itertools import accumulate

from gmot.settings import setting

__all__ = [
    "Sentence",
    "TextBalance",
    "WordBigram",
    "balance_by_coverage",
    "charset",
    "cjk_only",
    "hsk_word_runs",
    "natural_sentences",
    "pinyin_of",
    "select_text",
]

_NON_CJK = re.compile(r"[^\u4e00-\u9fff]")
_BOS, _EOS = "<s>", "</s>"
POOL_FACTOR = 6  # select_text draws this many times the sampled sentences it needs


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
        TextBalance(flatten=flatten, backoff=backoff)  # checks both ranges
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
        # cumulative weights, computed once: rng.choices(cum_weights=...) draws exactly what
        # rng.choices(weights=...) draws, without summing the weights again on every draw
        self._next = {
            a: (list(c), list(accumulate(n**flatten for n in c.values())))
            for a, c in follow.items()
        }
        self.reading = {w: c.most_common(1)[0][0] for w, c in readings.items()}
        self.backoff = backoff
        self._words = list(readings)
        self._word_cum_weights = list(
            accumulate(sum(readings[w].values()) ** flatten for w in self._words)
        )

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
                    cand, cum_weights = self._words, self._word_cum_weights
                else:
                    cand, cum_weights = self._next[prev]
                prev = rng.choices(cand, cum_weights=cum_weights)[0]
                if prev == _EOS:
                    break
                words.append(prev)
                n += len(prev)
            if prev == _EOS and min_chars <= n <= max_chars:
                syl = tuple(s for w in words for s in self.reading[w].split())
                return Sentence(tuple(words), syl, "sampled")
        hint = (
            f"; with backoff {self.backoff} a sentence can end only after the "
            f"{1 - self.backoff:.0%} of words drawn from the bigram, so lower --text-backoff"
            if self.backoff >= 0.5
            else ""
        )
        raise RuntimeError(
            f"no sentence of {min_chars}-{max_chars} characters in {tries} draws; widen the "
            f"range{hint}"
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


def balance_by_coverage(
    pool: list[Sentence], counts: Counter, num: int, target: float
) -> list[Sentence]:
    """Pick ``num`` sentences of ``pool`` that even out character counts (greedy, deterministic).

    A sentence's score is the mean over its characters of ``1 / (1 + count / target)``, with
    ``count`` the character's count in the text chosen so far (``counts``, updated in place):
    sentences with characters still rare in the selection come first. Lazy greedy: scores only
    fall as counts grow, so a popped sentence whose recomputed score still tops the heap is
    taken. Ties go to the earlier pool entry.
    """
    if target <= 0:
        raise ValueError(f"coverage target must be > 0, got {target}")

    def score(s: Sentence) -> float:
        return sum(1.0 / (1.0 + counts[c] / target) for c in s.chars) / len(s.chars)

    heap = [(-score(s), i) for i, s in enumerate(pool)]
    heapq.heapify(heap)
    out: list[Sentence] = []
    while heap and len(out) < num:
        _, i = heapq.heappop(heap)
        fresh = score(pool[i])
        if heap and fresh < -heap[0][0]:
            heapq.heappush(heap, (-fresh, i))
            continue
        out.append(pool[i])
        counts.update(pool[i].chars)
    return out


@dataclass(frozen=True)
class TextBalance:
    """How :func:`select_text` balances the sampled training sentences over the characters.

    One place for these options: each field's default and its help text (what it means, in
    which units and range) are declared here with :func:`gmot.settings.setting`, and the
    synthesiser's flags are generated from them (``local/synth_hsk_corpus.py``, see
    :mod:`gmot.corpora.hsk.cli`). The defaults are what the hsk recipe uses (README "Text").
    Out-of-range values are refused on construction with an error naming the field and flag.

    Attributes (ranges and defaults: each field's help text below):
        flatten: exponent (dimensionless) on the word counts of the sampling model.
        backoff: probability, per word after the first, of a word-unigram draw.
        coverage_target: character occurrences in the training text chosen so far at which a
            character's weight in :func:`balance_by_coverage`'s score has halved.
    """

    flatten: float = setting(
        0.5,
        "exponent in (0, 1] applied to the word-bigram (and word-unigram) counts before "
        "sampling training sentences; 1 = maximum likelihood, smaller = rare words and "
        "characters more often",
        flag="--text-flatten",
    )
    backoff: float = setting(
        0.3,
        "probability in [0, 1) that a sampled word (after the first) ignores the previous word "
        "and is drawn from the word-unigram distribution, so word pairs outside the HSK text "
        "occur; 0 = pure bigram text",
        flag="--text-backoff",
    )
    coverage_target: float = setting(
        100.0,
        f"character occurrences (>= 0) that even out the character counts of the training "
        f"text: {POOL_FACTOR}x the sampled sentences needed are drawn and those whose characters "
        "are still rare are kept (a character counts fully until about this many occurrences "
        "in the text chosen so far); 0 = off, the first distinct draws are kept",
        flag="--coverage-target",
    )

    def __post_init__(self) -> None:
        ranges = {  # field -> (allowed?, the range as errors state it)
            "flatten": (lambda v: 0.0 < v <= 1.0, "in (0, 1]"),
            "backoff": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
            "coverage_target": (lambda v: v >= 0.0, ">= 0 (0 = off)"),
        }
        for f in dataclasses.fields(self):
            v, (ok, want) = getattr(self, f.name), ranges[f.name]
            name = f"TextBalance.{f.name} ({f.metadata['flag']})"
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} must be a number {want}, got {v!r}")
            if not (math.isfinite(v) and ok(v)):
                raise ValueError(f"{name} must be {want}, got {v!r}")


def select_text(
    rng: random.Random,
    *,
    max_level: int,
    min_chars: int,
    max_chars: int,
    num_train: int,
    held_sentences: int,
    balance: TextBalance | None = None,
    pool_factor: int = POOL_FACTOR,
) -> dict[str, list[Sentence]]:
    """Sentences per split: dev/test get ``held_sentences`` held-out natural sentences each,
    train gets the other natural sentences and distinct sampled ones, ``num_train`` in all
    (distinct unless the bigram model runs out). Held-out sentences with a character that no
    training sentence has are given back to train.

    Sampled sentences come from the word-bigram model with transition counts raised to
    ``balance.flatten`` and a share ``balance.backoff`` of unigram draws (word pairs the HSK
    text lacks, so that the transducer's prediction network does not learn to rule out every
    pair it has not seen: a model trained on pure bigram text made 17 CER points more errors on
    held-out sentences than on training sentences, CTC 8). With ``balance.coverage_target``
    > 0, ``pool_factor`` times as many are drawn as needed and :func:`balance_by_coverage`
    keeps those that even out the character counts (the maximum-likelihood model alone leaves
    the rarest tenth of the characters under 20 times in 6000 sentences, and the model's errors
    on them were 3-10x those on frequent ones). With ``coverage_target`` 0, the first distinct
    draws are kept. ``balance`` None: :class:`TextBalance`'s defaults (the recipe's).
    """
    chars = charset(max_level)
    natural = natural_sentences(chars, min_chars, max_chars)
    rng.shuffle(natural)
    if held_sentences < 1 or 2 * held_sentences > len(natural) // 2:
        raise ValueError(
            f"held_sentences={held_sentences}: only {len(natural)} natural sentences of "
            f"{min_chars}-{max_chars} characters exist at max_level {max_level}; dev and test "
            f"together may take at most half of them ({len(natural) // 4} each)"
        )
    if pool_factor < 1:
        raise ValueError(f"pool_factor must be >= 1, got {pool_factor}")
    if balance is None:
        balance = TextBalance()
    coverage_target = balance.coverage_target
    held = natural[: 2 * held_sentences]
    held_text = {s.chars for s in held}
    train = natural[2 * held_sentences :][:num_train]
    bigram = WordBigram(
        hsk_word_runs(chars, held_text), flatten=balance.flatten, backoff=balance.backoff
    )
    seen = {s.chars for s in train} | held_text
    need = num_train - len(train)
    want = need * (pool_factor if coverage_target > 0 else 1)
    pool: list[Sentence] = []
    attempts = 0
    while len(pool) < want and attempts < 20 * want:
        attempts += 1
        s = bigram.sample(rng, min_chars, max_chars)
        if s.chars not in seen:
            seen.add(s.chars)
            pool.append(s)
    if coverage_target > 0:
        counts = Counter(c for s in train for c in s.chars)
        pool = balance_by_coverage(pool, counts, need, coverage_target)
    train += pool[:need]
    if len(train) < num_train:
        logging.warning(
            "hsk text: only %d distinct training sentences; the rest repeat them", len(train)
        )
        train = [train[i % len(train)] for i in range(num_train)]
    train_chars = {c for s in train for c in s.chars}
    dev, test = (
        [s for s in part if set(s.chars) <= train_chars]
        for part in (held[:held_sentences], held[held_sentences:])
    )
    if not dev or not test:
        raise ValueError(
            f"no {'dev' if not dev else 'test'} sentence left whose characters all occur in the "
            f"{len(train)} training sentences (max_level {max_level}, {held_sentences} held out "
            "per split); raise --num-train or --held-sentences"
        )
    return {"train": train, "dev": dev, "test": test}
