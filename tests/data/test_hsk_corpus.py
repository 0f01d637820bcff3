import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from gmot.data.espeak import EspeakSynth
from gmot.data.hsk_corpus import (
    balance_by_coverage,
    plan_utterances,
    select_text,
    synthesize_corpus,
)
from gmot.data.hsk_text import (
    Sentence,
    WordBigram,
    WordRun,
    charset,
    natural_sentences,
    pinyin_of,
)

SCRIPT = Path(__file__).resolve().parents[2] / "local" / "synth_hsk_corpus.py"


def test_tiny_corpus_read_by_lhotse(tiny_hsk):
    from lhotse.recipes import prepare_aishell

    root, counts = tiny_hsk
    assert counts == {"train": 20, "dev": 2, "test": 2}
    assert (root / "data_aishell" / "LICENSE-and-ATTRIBUTION.txt").read_text().count("CC-BY-SA-4.0")
    m = prepare_aishell(root)
    spk = {}
    texts = {}
    for part, n in counts.items():
        sups = list(m[part]["supervisions"])
        recs = list(m[part]["recordings"])
        assert len(sups) == n and len(recs) == n
        spk[part] = {s.speaker for s in sups}
        texts[part] = {s.text for s in sups}
        for r, s in zip(recs, sups):
            assert r.sampling_rate == 16000 and r.num_channels == 1
            assert 0.5 < r.duration < 10.0, r.duration
            assert s.id.startswith("BAC009" + s.speaker) and s.text and " " not in s.text
            x = r.load_audio()[0]
            assert np.sqrt(np.mean(x**2)) > 1e-3  # non-silent
    # speakers and sentences held out between splits
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"]
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["dev"]


def _run_synth(out: Path, *extra: str) -> list[tuple[str, bytes]]:
    cmd = [sys.executable, str(SCRIPT), "--output-dir", str(out), "--num-train", "20"]
    cmd += ["--num-dev", "1", "--num-test", "1", "--utts-per-speaker", "5", *extra]
    subprocess.run(cmd, check=True, capture_output=True)
    files = sorted(out.rglob("*.wav")) + sorted(out.rglob("*.txt")) + sorted(out.rglob("*.tsv"))
    return [(f.relative_to(out).as_posix(), f.read_bytes()) for f in files]


def test_deterministic_given_seed(tmp_path):
    # espeak-ng carries a little internal state between calls, so the guarantee is per fresh
    # process: the same command line gives byte-identical files.
    a = _run_synth(tmp_path / "a")
    b = _run_synth(tmp_path / "b")
    assert len(a) == 22 + 2 + 2
    assert a == b
    c = _run_synth(tmp_path / "c", "--seed", "7")
    assert a != c


def test_output_independent_of_num_jobs(tmp_path):
    kw = dict(num_train=20, num_dev=2, num_test=2, utts_per_speaker=3, seed=5, chunk_size=7)
    synthesize_corpus(tmp_path / "one", num_jobs=1, **kw)
    synthesize_corpus(tmp_path / "two", num_jobs=2, **kw)
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.*"))
    assert one == two and len(one) == 24 + 4
    for rel in one:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_pinyin_drives_audio():
    tts = EspeakSynth("cmn-latn-pinyin")
    a = tts.synth("ma1 ma1", rate=160, pitch=50).astype(np.float64)
    b = tts.synth("ma3 ma3", rate=160, pitch=50).astype(np.float64)
    c = tts.synth("ma1 ma1 ma1 ma1 ma1 ma1", rate=160, pitch=50)
    assert len(c) > 2 * len(a)  # more syllables -> longer audio
    n = min(len(a), len(b))
    assert not np.allclose(a[:n], b[:n])  # tone changes the waveform


def test_charset_is_the_level_characters():
    import hsk_sentences_audio as hsk

    level1 = set()
    for s in hsk.load_sentences():
        if s["hsk_level"] == 1:
            level1 |= {c for c in s["chinese"] if "\u4e00" <= c <= "\u9fff"}
    assert charset(1) == level1
    assert charset(1) < charset(2)
    with pytest.raises(ValueError, match="max_level"):
        charset(0)


def test_natural_sentences_stay_in_the_charset():
    chars = charset(1)
    sents = natural_sentences(chars, 4, 9)
    assert len(sents) > 300
    assert all(4 <= len(s.chars) <= 9 and set(s.chars) <= chars for s in sents)
    assert len({s.chars for s in sents}) == len(sents)
    assert any(not s.source.startswith("hsk1") for s in sents)  # higher levels contribute


def test_word_bigram_follows_its_runs():
    runs = [
        WordRun((("我", "wo3"), ("喜欢", "xi3 huan5"), ("你", "ni3")), True, True),
        WordRun((("喜欢", "xi3 huan1"), ("他", "ta1")), False, True),
        WordRun((("他", "ta1"), ("喜欢", "xi3 huan5")), True, False),
    ]
    bg = WordBigram(runs)
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        s = bg.sample(rng, 1, 20)
        seen.add(s.text)
        assert s.words[0] in ("我", "他")  # only words that start a sentence start one
        assert s.words[-1] in ("你", "他")  # only words that end a sentence end one
        for a, b in zip(s.words, s.words[1:]):
            assert (a, b) in {("我", "喜欢"), ("喜欢", "你"), ("喜欢", "他"), ("他", "喜欢")}
        # each word with its most frequent reading
        assert s.pinyin == tuple(
            p
            for w in s.words
            for p in {"我": "wo3", "喜欢": "xi3 huan5", "你": "ni3", "他": "ta1"}[w].split()
        )
    assert {"我 喜欢 你", "他 喜欢 你", "我 喜欢 他"} <= seen
    with pytest.raises(RuntimeError, match="no sentence"):
        bg.sample(rng, 30, 40)
    with pytest.raises(ValueError):
        WordBigram([WordRun((("我", "wo3"),), False, False)])


def test_word_bigram_flatten_reweights_transitions():
    # "我" is followed by "喜欢" 9 times and by "是" once: ML picks "是" with p = 0.1,
    # flatten 0.5 with p = 1 / (1 + 3) = 0.25, and flatten outside (0, 1] is refused.
    runs = [WordRun((("我", "wo3"), ("喜欢", "xi3 huan5")), True, True)] * 9
    runs = runs + [WordRun((("我", "wo3"), ("是", "shi4")), True, True)]
    for flatten, p in ((1.0, 0.1), (0.5, 0.25)):
        bg = WordBigram(runs, flatten=flatten)
        rng = random.Random(0)
        n = 4000
        share = sum(bg.sample(rng, 1, 5).words[1] == "是" for _ in range(n)) / n
        assert abs(share - p) < 4 * (p * (1 - p) / n) ** 0.5, (flatten, share)
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="flatten"):
            WordBigram(runs, flatten=bad)


def test_word_bigram_backoff_brings_unseen_pairs():
    runs = [
        WordRun((("我", "wo3"), ("喜欢", "xi3 huan5"), ("你", "ni3")), True, True),
        WordRun((("他", "ta1"), ("是", "shi4"), ("老师", "lao3 shi1")), True, True),
    ]
    seen_pairs = {("我", "喜欢"), ("喜欢", "你"), ("他", "是"), ("是", "老师")}
    for backoff in (0.0, 0.4):
        bg = WordBigram(runs, backoff=backoff)
        rng = random.Random(1)
        pairs = Counter()
        for _ in range(300):
            s = bg.sample(rng, 1, 12)
            assert s.words[0] in ("我", "他")  # the first word still starts an HSK sentence
            assert s.words[-1] in ("你", "老师")  # and the last one ends one
            pairs.update(zip(s.words, s.words[1:]))
        unseen = sum(n for p, n in pairs.items() if p not in seen_pairs) / sum(pairs.values())
        if backoff == 0.0:
            assert unseen == 0.0
        else:  # a backed-off word makes a new pair unless it is the usual follower
            assert 0.15 < unseen < 0.7, unseen  # accepted sentences are a biased sample
    with pytest.raises(ValueError, match="backoff"):
        WordBigram(runs, backoff=1.0)


def _greedy_reference(pool, counts, num, target):
    """Plain (non-lazy) greedy: rescore every remaining sentence at each pick."""
    counts, left, out = dict(counts), list(range(len(pool))), []
    for _ in range(min(num, len(pool))):

        def score(i):
            cs = pool[i].chars
            return sum(1 / (1 + counts.get(c, 0) / target) for c in cs) / len(cs)

        best = max(left, key=lambda i: (score(i), -i))
        left.remove(best)
        out.append(pool[best])
        for c in pool[best].chars:
            counts[c] = counts.get(c, 0) + 1
    return out


def test_balance_by_coverage_equals_plain_greedy():
    rng = random.Random(3)
    alphabet = "我你他是的了在有人好不大"
    pool = []
    for _ in range(60):
        text = "".join(rng.choice(alphabet[: rng.randint(2, len(alphabet))]) for _ in range(4))
        pool.append(Sentence((text,), ("a1",) * 4, "sampled"))
    start = Counter("我我我我你")
    for target in (1.0, 5.0):
        got = balance_by_coverage(pool, Counter(start), 25, target)
        assert [s.chars for s in got] == [
            s.chars for s in _greedy_reference(pool, start, 25, target)
        ]
    with pytest.raises(ValueError, match="target"):
        balance_by_coverage(pool, Counter(), 5, 0.0)


def test_select_text_evens_character_counts():
    kw = dict(max_level=1, min_chars=4, max_chars=16, num_train=1500, held_sentences=20)
    tenth = {}
    ml = dict(flatten=1.0, backoff=0.0, coverage_target=0)
    for name, extra in (("ml", ml), ("even", dict(backoff=0.0)), ("default", {})):
        text = select_text(random.Random(5), **kw, **extra)
        train = text["train"]
        assert len({s.chars for s in train}) == 1500  # still distinct
        held = {s.chars for s in text["dev"] + text["test"]}
        assert not held & {s.chars for s in train}
        counts = Counter(c for s in train for c in s.chars)
        tenth[name] = sorted(counts.values())[len(counts) // 10]
    # the rarest tenth of the characters occurs far more often once counts are evened out
    assert tenth["even"] >= 2 * tenth["ml"] and tenth["default"] >= 2 * tenth["ml"], tenth


def test_sentence_checks_its_pinyin():
    with pytest.raises(ValueError, match="2 syllables for 3 characters"):
        Sentence(("你好", "吗"), ("ni3", "hao3"), "x")


def test_pinyin_of():
    assert pinyin_of("我们") == ("wo3", "men5")
    assert pinyin_of("你 好") == ("ni3", "hao3")
    with pytest.raises(ValueError):
        pinyin_of("abc")


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


def test_cli_reports_impossible_request(tmp_path):
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--output-dir", str(tmp_path), "--held-sentences", "500"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert "held_sentences=500" in r.stderr
    assert not (tmp_path / "data_aishell").exists()


_VARIANT_PROBE = """
import hashlib, sys
from gmot.data.espeak import EspeakSynth
t = EspeakSynth("cmn-latn-pinyin")
for v in sys.argv[1:]:
    for _ in range(2):
        x = t.synth("wo3 xiang3 qu4 bei3 jing1", variant=v, rate=160, pitch=50)
        print(v, hashlib.md5(x.tobytes()).hexdigest())
"""


def test_used_variants_are_reproducible_across_processes():
    from gmot.data.hsk_corpus import usable_variants

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


def test_text_set_reads_any_text(tmp_path):
    from gmot.data.hsk_corpus import main_text_set, plan_text_set

    lines = ["我们 明天 见。", "", "abc", "你好吗"]
    utts = plan_text_set(
        lines, readings=3, utts_per_speaker=2, variants=["m1", "f1"], pitch_range=(5, 6), seed=1
    )
    assert len(utts) == 6
    assert sorted({u.sentence.text for u in utts}) == ["你好吗", "我们 明天 见"]
    for u in utts:
        assert u.split == "test" and u.speaker.variant in ("m1", "f1") and 5 <= u.pitch <= 6
        assert u.pinyin == " ".join(pinyin_of(u.sentence.chars))
    assert len({u.utt_id for u in utts}) == 6
    with pytest.raises(ValueError, match="no line"):
        plan_text_set(["abc"])
    with pytest.raises(ValueError, match="whisper"):
        plan_text_set(["你好"], variants=["whisper"])
    text = tmp_path / "t.txt"
    text.write_text("你好\n", encoding="utf-8")
    assert (
        main_text_set(
            ["--text-file", str(text), "--output-dir", str(tmp_path / "o"), "--readings", "2"]
        )
        == 0
    )
    wavs = sorted((tmp_path / "o" / "data_aishell" / "wav" / "test").rglob("*.wav"))
    assert len(wavs) == 2
    assert (
        main_text_set(["--text-file", str(tmp_path / "missing.txt"), "--output-dir", str(tmp_path)])
        == 2
    )


def test_plan_without_held_out_variants():
    utts = plan_utterances(**{**_PLAN, "num_train": 400, "utts_per_speaker": 4, "held_variants": 0})
    from gmot.data.hsk_corpus import usable_variants

    spk = {k: {u.speaker for u in utts if u.split == k} for k in ("train", "dev", "test")}
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"]
    assert {s.variant for s in spk["train"]} == set(usable_variants())  # 100 speakers, 93 variants
    assert {s.variant for s in spk["dev"]} != {s.variant for s in spk["test"]}


def test_rewrite_removes_the_previous_corpus(tmp_path):
    # A corpus written earlier with other options (here: 10 utterances per speaker, so wav
    # names W0006.. that a 5-per-speaker plan never uses) must not survive a rewrite: prepare
    # would read every wav it finds, and stale ones whose names the new transcript reuses
    # would carry another sentence's text.
    kw = dict(num_train=20, num_dev=2, num_test=2, max_level=1, seed=3)
    synthesize_corpus(tmp_path, utts_per_speaker=10, **kw)
    synthesize_corpus(tmp_path, utts_per_speaker=5, **kw)
    root = tmp_path / "data_aishell"
    wavs = {p.stem for p in (root / "wav").rglob("*.wav")}
    listed = {
        line.split()[0]
        for line in (root / "transcript/aishell_transcript_v0.8.txt").read_text().splitlines()
    }
    assert wavs == listed and len(wavs) == 24


def test_refuses_to_write_into_foreign_audio(tmp_path):
    foreign = tmp_path / "data_aishell/wav/train/S0002/BAC009S0002W0001.wav"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"RIFF")  # someone's real corpus: no gmot licence file beside it
    with pytest.raises(ValueError, match="not written by gmot"):
        synthesize_corpus(tmp_path, num_train=20, num_dev=2, num_test=2, utts_per_speaker=5, seed=3)
    assert foreign.read_bytes() == b"RIFF"
