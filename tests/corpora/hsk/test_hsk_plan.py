"""gmot.corpora.hsk.plan: speakers and utterances of the corpus, and the voice variants it uses."""

import re
import subprocess
import sys

import numpy as np
import pytest

from gmot.corpora.hsk.plan import plan_utterances, usable_variants
from gmot.corpora.hsk.text import charset, pinyin_of

_PLAN = dict(
    num_train=600,
    num_dev=40,
    num_test=40,
    utts_per_speaker=20,
    max_level=1,
    min_chars=4,
    max_chars=16,
    held_sentences=10,
    held_variants=3,
    pypinyin_prob=0.3,
    seed=1,
)


def test_plan_keeps_splits_apart():
    utts = plan_utterances(**_PLAN)
    by = {k: [u for u in utts if u.split == k] for k in ("train", "dev", "test")}
    assert [len(v) for v in by.values()] == [600, 40, 40]
    text = {k: {u.sentence.chars for u in v} for k, v in by.items()}
    variants = {k: {u.speaker.variant for u in v} for k, v in by.items()}
    assert len(text["train"]) == 600  # every training utterance reads a distinct sentence
    assert 1 <= len(text["dev"]) <= 10 and 1 <= len(text["test"]) <= 10
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not text[a] & text[b], (a, b)
        assert not variants[a] & variants[b], (a, b)
    train_chars = {c for t in text["train"] for c in t}
    assert all(set(t) <= train_chars for t in text["dev"] | text["test"])
    assert all(set(t) <= charset(1) for v in text.values() for t in v)
    assert len({u.utt_id for u in utts}) == len(utts)
    assert sum(u.sentence.source == "sampled" for u in by["train"]) > 100
    for u in utts:
        assert re.fullmatch(r"BAC009S\d{4}W\d{4}", u.utt_id)
        assert len(u.pinyin.split()) == len(u.sentence.chars)
        assert 0 <= u.pitch <= 100 and 80 <= u.rate <= 450
    # about pypinyin_prob of the utterances take pypinyin's reading where it differs
    differ = [u for u in by["train"] if pinyin_of(u.sentence.chars) != u.sentence.pinyin]
    share = np.mean([u.pinyin == " ".join(pinyin_of(u.sentence.chars)) for u in differ])
    assert 0.15 < share < 0.45, share


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(held_sentences=200), "held_sentences=200"),
        (dict(held_variants=60), "held_variants=60"),
        (dict(num_dev=0), "num_dev must be >= 1"),
        (dict(pypinyin_prob=1.5), "pypinyin_prob"),
        (dict(min_chars=15, max_chars=16), "natural sentences"),
    ],
)
def test_impossible_requests_are_refused(kw, msg):
    base = {**_PLAN, "num_train": 200, "num_dev": 2, "num_test": 2, "utts_per_speaker": 5}
    base.update(held_sentences=5, held_variants=2, seed=0)
    with pytest.raises(ValueError, match=msg):
        plan_utterances(**{**base, **kw})


def test_plan_without_held_out_variants():
    utts = plan_utterances(**{**_PLAN, "num_train": 400, "utts_per_speaker": 4, "held_variants": 0})
    spk = {k: {u.speaker for u in utts if u.split == k} for k in ("train", "dev", "test")}
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"]
    assert {s.variant for s in spk["train"]} == set(usable_variants())  # 100 speakers, 93 variants
    assert {s.variant for s in spk["dev"]} != {s.variant for s in spk["test"]}


_VARIANT_PROBE = """
import hashlib, sys
from gmot.corpora.espeak import EspeakSynth
t = EspeakSynth("cmn-latn-pinyin")
for v in sys.argv[1:]:
    for _ in range(2):
        x = t.synth("wo3 xiang3 qu4 bei3 jing1", variant=v, rate=160, pitch=50)
        print(v, hashlib.md5(x.tobytes()).hexdigest())
"""


def test_used_variants_are_reproducible_across_processes():
    variants = usable_variants()
    assert len(variants) > 80
    runs = [
        subprocess.run(
            [sys.executable, "-c", _VARIANT_PROBE, *variants],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert len(runs[0].splitlines()) == 2 * len(variants)
