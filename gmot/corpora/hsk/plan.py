"""Plan the hsk corpus: its speakers and utterances (text, pinyin, voice settings), no audio.

A speaker is an espeak voice variant with a base pitch and rate drawn from continuous ranges
(:func:`make_speakers`); train, dev and test have disjoint speakers, and with ``held_variants``
> 0 dev and test also get voice variants that training never hears (:func:`split_variants`).
Each utterance jitters its speaker's pitch and rate and reads its sentence with the HSK pinyin
or, for a share ``pypinyin_prob``, pypinyin's. :func:`plan_text_set` plans a set that reads
any other text. :mod:`gmot.corpora.hsk.synth` turns a plan into audio.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from gmot.corpora.hsk.text import Sentence, TextBalance, cjk_only, pinyin_of, select_text

__all__ = [
    "PITCH_RANGE",
    "RATE_RANGE",
    "Speaker",
    "Utterance",
    "make_speakers",
    "plan_text_set",
    "plan_utterances",
    "split_variants",
    "usable_variants",
]

# whisper*: near-silent, unvoiced. The others give different audio for the same call in two
# fresh processes with espeak-ng 1.52 (espeakng-loader 0.2.4), so a corpus using them could not
# be rebuilt byte for byte; tests/corpora/hsk/test_hsk_plan.py checks the rest are reproducible.
_EXCLUDED_VARIANTS = {
    "whisper",
    "whisperf",
    "Alicia",
    "Demonic",
    "f2",
    "f3",
    "f5",
    "sandro",
    "victor",
}
PITCH_RANGE = (10, 90)  # espeak base pitch, 0..100
RATE_RANGE = (110, 230)  # words per minute


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: espeak voice variant, base pitch (0..100) and rate (words/min)."""

    spk_id: str
    split: str
    variant: str
    pitch: int
    rate: int


@dataclass(frozen=True)
class Utterance:
    """One utterance to synthesise: the speaker's settings with this utterance's jitter."""

    utt_id: str
    split: str
    speaker: Speaker
    sentence: Sentence
    pinyin: str
    pitch: int
    rate: int


def usable_variants() -> list[str]:
    """The espeak voice variants the corpus draws speakers from (sorted)."""
    from gmot.corpora.espeak import list_variants

    return [v for v in list_variants() if v not in _EXCLUDED_VARIANTS]


def split_variants(rng: random.Random, held: int) -> dict[str, list[str]]:
    """Voice-variant pools per split: with ``held`` > 0, ``held`` variants only dev uses and as
    many only test uses, the rest for train; with 0, every split draws from all variants (the
    speakers, i.e. variant + pitch + rate, still differ between splits)."""
    variants = usable_variants()
    if held < 0 or 2 * held >= len(variants):
        raise ValueError(
            f"held_variants={held}: need 0 <= 2 * held_variants < {len(variants)} (the espeak "
            "variants available), so that train keeps some"
        )
    rng.shuffle(variants)
    if held == 0:
        return {"dev": variants, "test": variants, "train": variants}
    return {
        "dev": variants[:held],
        "test": variants[held : 2 * held],
        "train": variants[2 * held :],
    }


def make_speakers(
    rng: random.Random, split: str, variants: list[str], num: int, start_index: int
) -> list[Speaker]:
    """``num`` speakers of ``split`` cycling through ``variants`` in a random order, base pitch
    and rate drawn uniformly from PITCH_RANGE and RATE_RANGE; ids S{start_index:04d}, ..."""
    order = variants[:]
    rng.shuffle(order)
    return [
        Speaker(
            f"S{start_index + i:04d}",
            split,
            order[i % len(order)],
            rng.randint(*PITCH_RANGE),
            rng.randint(*RATE_RANGE),
        )
        for i in range(num)
    ]


def plan_utterances(
    *,
    num_train: int,
    num_dev: int,
    num_test: int,
    utts_per_speaker: int,
    max_level: int,
    min_chars: int,
    max_chars: int,
    held_sentences: int,
    held_variants: int,
    pypinyin_prob: float,
    seed: int,
    text_balance: TextBalance | None = None,
) -> list[Utterance]:
    """Every utterance of the corpus with its text, pinyin and voice settings (no audio);
    ``text_balance`` is how the sampled training text is chosen (:func:`select_text`; None:
    :class:`TextBalance`'s defaults)."""
    sizes = {"train": num_train, "dev": num_dev, "test": num_test}
    for name, v in sizes.items():
        if v < 1:
            raise ValueError(f"num_{name} must be >= 1, got {v}")
    if utts_per_speaker < 1:
        raise ValueError(f"utts_per_speaker must be >= 1, got {utts_per_speaker}")
    if not 0.0 <= pypinyin_prob <= 1.0:
        raise ValueError(f"pypinyin_prob must be in [0, 1], got {pypinyin_prob}")
    rng = random.Random(seed)
    text = select_text(
        rng,
        max_level=max_level,
        min_chars=min_chars,
        max_chars=max_chars,
        num_train=num_train,
        held_sentences=held_sentences,
        balance=text_balance,
    )
    pools = split_variants(rng, held_variants)
    out: list[Utterance] = []
    next_spk = 2
    for split in ("train", "dev", "test"):
        n_spk = math.ceil(sizes[split] / utts_per_speaker)
        speakers = make_speakers(rng, split, pools[split], n_spk, next_spk)
        next_spk += n_spk
        order: list[Sentence] = []
        while len(order) < sizes[split]:  # cycle through the split's sentences, reshuffled
            block = text[split][:]
            rng.shuffle(block)
            order.extend(block)
        for i, sent in enumerate(order[: sizes[split]]):
            spk = speakers[i // utts_per_speaker]
            syl = pinyin_of(sent.chars) if rng.random() < pypinyin_prob else sent.pinyin
            out.append(
                Utterance(
                    utt_id=f"BAC009{spk.spk_id}W{i % utts_per_speaker + 1:04d}",
                    split=split,
                    speaker=spk,
                    sentence=sent,
                    pinyin=" ".join(syl),
                    pitch=int(np.clip(spk.pitch + rng.randint(-5, 5), 0, 100)),
                    rate=int(np.clip(spk.rate + rng.randint(-10, 10), 80, 450)),
                )
            )
    return out


def plan_text_set(
    lines: list[str],
    *,
    split: str = "test",
    readings: int = 5,
    utts_per_speaker: int = 10,
    variants: list[str] | None = None,
    pitch_range: tuple[int, int] = (0, 100),
    rate_range: tuple[int, int] = (90, 260),
    seed: int = 7,
) -> list[Utterance]:
    """Utterances reading each line of ``lines`` (Chinese text; spaces separate words, other
    non-CJK characters are dropped) ``readings`` times with pypinyin's pinyin, by speakers drawn
    from ``variants`` (default: every usable one) and the given pitch and rate ranges: a set
    built independently of the corpus's own text and voices, for checking generalisation."""
    rng = random.Random(seed)
    sents = []
    for i, line in enumerate(lines):
        words = tuple(w for w in (cjk_only(t) for t in line.split()) if w)
        if words:
            chars = "".join(words)
            sents.append(Sentence(words, pinyin_of(chars), f"line{i + 1}"))
    if not sents:
        raise ValueError("no line with Chinese characters in the text")
    pool = list(variants) if variants else usable_variants()
    unknown = set(pool) - set(usable_variants())
    if unknown:
        raise ValueError(f"unknown or excluded espeak variants: {sorted(unknown)}")
    order = [s for _ in range(readings) for s in sents]
    rng.shuffle(order)
    n_spk = math.ceil(len(order) / utts_per_speaker)
    speakers = [
        Speaker(
            f"S{9000 + i:04d}",
            split,
            rng.choice(pool),
            rng.randint(*pitch_range),
            rng.randint(*rate_range),
        )
        for i in range(n_spk)
    ]
    return [
        Utterance(
            utt_id=f"BAC009{speakers[i // utts_per_speaker].spk_id}W{i % utts_per_speaker + 1:04d}",
            split=split,
            speaker=speakers[i // utts_per_speaker],
            sentence=sent,
            pinyin=" ".join(sent.pinyin),
            pitch=speakers[i // utts_per_speaker].pitch,
            rate=speakers[i // utts_per_speaker].rate,
        )
        for i, sent in enumerate(order)
    ]
