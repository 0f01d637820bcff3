"""gmot.corpora.hsk.text: character set, natural and sampled sentences, text per split."""

import dataclasses
import logging
import random
from collections import Counter

import pytest

from gmot.corpora.hsk.cli import get_parser, main
from gmot.corpora.hsk.text import (
    Sentence,
    TextBalance,
    WordBigram,
    WordRun,
    balance_by_coverage,
    charset,
    natural_sentences,
    pinyin_of,
    select_text,
)
from gmot.settings import from_flags


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


def test_word_bigram_high_backoff_that_cannot_end_names_the_flag():
    """Unigram draws never end a sentence (only the bigram's 们 -> end does): with a high
    backoff and a length limit below the one HSK run, no draw fits, and the error says which
    option to lower."""
    runs = [WordRun(tuple((w, "wo3") for w in "我你他她它们"), True, True)]
    with pytest.raises(RuntimeError, match="lower --text-backoff"):
        WordBigram(runs, backoff=0.95).sample(random.Random(0), 1, 2, tries=5)
    with pytest.raises(RuntimeError, match="widen the range$"):  # low backoff: no such hint
        WordBigram(runs).sample(random.Random(0), 1, 2, tries=5)


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
    ml = TextBalance(flatten=1.0, backoff=0.0, coverage_target=0)
    for name, balance in (("ml", ml), ("even", TextBalance(backoff=0.0)), ("default", None)):
        text = select_text(random.Random(5), **kw, balance=balance)
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


@pytest.mark.parametrize(
    "kw, field, exc",
    [
        (dict(flatten=0.0), "flatten", ValueError),
        (dict(flatten=1.5), "flatten", ValueError),
        (dict(flatten=float("nan")), "flatten", ValueError),
        (dict(backoff=1.0), "backoff", ValueError),
        (dict(backoff=-0.1), "backoff", ValueError),
        (dict(coverage_target=-1), "coverage_target", ValueError),
        (dict(coverage_target=float("inf")), "coverage_target", ValueError),
        (dict(flatten="0.5"), "flatten", TypeError),
        (dict(backoff=True), "backoff", TypeError),
    ],
)
def test_text_balance_refuses_bad_values(kw, field, exc):
    with pytest.raises(exc, match=rf"TextBalance\.{field} \(--"):
        TextBalance(**kw)


def test_text_balance_accepts_range_edges():
    TextBalance(flatten=1.0, backoff=0.0, coverage_target=0)  # the maximum-likelihood text
    TextBalance(flatten=1e-6, backoff=0.999, coverage_target=1e6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        TextBalance().flatten = 1.0  # type: ignore[misc]


def test_cli_text_flags_come_from_text_balance():
    # the synthesiser's flags, their defaults and help are TextBalance's fields (one place)
    actions = {s: a for a in get_parser()._actions for s in a.option_strings}
    for f in dataclasses.fields(TextBalance):
        action = actions[f.metadata["flag"]]
        assert action.default == f.default and action.help == f.metadata["help"], f.name
    assert from_flags(TextBalance, get_parser().parse_args(["--output-dir", "x"])) == TextBalance()
    argv = "--output-dir x --text-flatten 0.7 --text-backoff 0 --coverage-target 5".split()
    got = from_flags(TextBalance, get_parser().parse_args(argv))
    assert got == TextBalance(flatten=0.7, backoff=0.0, coverage_target=5.0)


def test_cli_refuses_bad_text_balance(tmp_path, caplog):
    with caplog.at_level(logging.ERROR):
        assert main(["--output-dir", str(tmp_path), "--text-backoff", "1"]) == 2
    assert "TextBalance.backoff (--text-backoff) must be in [0, 1), got 1.0" in caplog.text
    assert not (tmp_path / "data_aishell").exists()
