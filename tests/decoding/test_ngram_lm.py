"""The character n-gram LM (gmot.decoding.ngram_lm): proper distributions, a hand-computed
model, ARPA round trips and errors, and its use as a rescoring scorer."""

import math
import random

import pytest
import torch

from gmot.decoding.ngram_lm import EOS, NgramLm, NgramLmScorer, train_ngram
from gmot.decoding.rescoring import WeightedScorers


def _corpus(seed=0, n=200, chars="abcdef"):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        alphabet = chars[: rng.randint(2, len(chars))]
        out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))))
    return out


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_history_gives_a_distribution(order):
    lm = train_ngram(_corpus(), order=order, vocab="abcdefg")  # g never occurs in the text
    words = list("abcdefg") + [EOS]
    for hist in (["<s>"], ["<s>", "a"], ["<s>", "b", "a"], ["g", "g"], ["f", "a", "c"]):
        total = sum(10 ** lm.log10_prob(hist, w) for w in words)
        assert total == pytest.approx(1.0, abs=1e-9), (hist, total)
    assert lm.log10_prob(["a"], "g") > -10  # a vocabulary symbol, not the unseen floor


def test_bigram_by_hand():
    # <s> a b </s> and <s> a </s> with D = 0.5: unigram p = (c - D) / 5 + D * 3 / 5 / 3
    lm = train_ngram(["ab", "a"], order=2, discount=0.5)
    p1 = {"a": 0.4, "b": 0.2, EOS: 0.4}
    for w, p in p1.items():
        assert 10 ** lm.log10_prob([], w) == pytest.approx(p)
    # history <s>: seen 2 times, 1 successor type; history a: 2 times, 2 types; b: 1, 1
    assert 10 ** lm.log10_prob(["<s>"], "a") == pytest.approx(1.5 / 2 + 0.25 * 0.4)
    assert 10 ** lm.log10_prob(["<s>"], "b") == pytest.approx(0.25 * 0.2)
    assert 10 ** lm.log10_prob(["<s>", "a"], "b") == pytest.approx(0.5 / 2 + 0.5 * 0.2)
    assert 10 ** lm.log10_prob(["a"], "a") == pytest.approx(0.5 * 0.4)
    assert 10 ** lm.log10_prob(["b"], EOS) == pytest.approx(0.5 + 0.5 * 0.4)
    want = math.log((0.75 + 0.1) * (0.25 + 0.1) * (0.5 + 0.2))
    assert lm.log_prob("ab") == pytest.approx(want)


def test_arpa_round_trip(tmp_path):
    lm = train_ngram(_corpus(1), order=3, vocab="abcdefg")
    path = lm.write_arpa(tmp_path / "lm" / "char_3gram.arpa")
    assert [p.name for p in path.parent.iterdir()] == ["char_3gram.arpa"]  # no temporary left
    back = NgramLm.read_arpa(path)
    assert back.order == 3 and set(back.probs) == set(lm.probs)
    for sent in ["", "a", "abc", "gfe", "aaaaaa", "zz"]:  # z: not in the model at all
        assert back.log_prob(sent) == pytest.approx(lm.log_prob(sent), abs=1e-4), sent


def test_reads_a_handwritten_backoff_arpa(tmp_path):
    text = "\n".join([
        "\\data\\", "ngram 1=3", "ngram 2=1", "",
        "\\1-grams:", "-1.0\t<s>\t-0.5", "-0.5\ta\t-0.3", "-0.7\t</s>", "",
        "\\2-grams:", "-0.2\t<s> a", "", "\\end\\", "",
    ])  # fmt: skip
    (tmp_path / "x.arpa").write_text(text, encoding="utf-8")
    lm = NgramLm.read_arpa(tmp_path / "x.arpa")
    assert lm.log10_prob(["<s>"], "a") == pytest.approx(-0.2)
    assert lm.log10_prob(["<s>"], EOS) == pytest.approx(-0.5 - 0.7)  # backoff of <s>
    assert lm.log10_prob(["a"], EOS) == pytest.approx(-0.3 - 0.7)  # backoff of a
    assert lm.log_prob("a") == pytest.approx((-0.2 - 1.0) * math.log(10))


def test_bad_arpa_files_name_the_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.arpa"):
        NgramLm.read_arpa(tmp_path / "nothing.arpa")
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\ta\n-0.1 b c d e\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.arpa:6: expected log10 prob"):
        NgramLm.read_arpa(bad)
    bad.write_text("\\1-grams:\nx\ta\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.arpa:2"):
        NgramLm.read_arpa(bad)
    bad.write_text("hello world\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.arpa:1: n-gram line before"):
        NgramLm.read_arpa(bad)
    bad.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no n-grams"):
        NgramLm.read_arpa(bad)
    with pytest.raises(ValueError, match="discount"):
        train_ngram(["ab"], discount=1.0)
    with pytest.raises(ValueError, match="no training sentences"):
        train_ngram([])


def test_scorer_and_weighted_scorers():
    lm = train_ngram(["ab", "ab", "ba"], order=2)
    symbols = ["<blk>", "<sos/eos>", "<unk>", "a", "b"]
    scorer = NgramLmScorer(lm, symbols)
    enc, lens = torch.zeros(2, 3, 4), torch.tensor([3, 3])
    s = scorer.score(enc, lens, [[3, 4], [4, 4]])
    assert s.tolist() == pytest.approx([lm.log_prob("ab"), lm.log_prob("bb")])
    assert s[0] > s[1]

    class Impossible:
        def score(self, encoder_out, encoder_out_lens, token_ids):
            return torch.full((len(token_ids),), -float("inf"))

    both = WeightedScorers([(scorer, 2.0), (Impossible(), 0.0)])
    assert both.score(enc, lens, [[3, 4], [4, 4]]).tolist() == pytest.approx((2 * s).tolist())
    assert torch.isinf(WeightedScorers([(Impossible(), 1.0)]).score(enc, lens, [[3]])).all()


@pytest.mark.parametrize("order", [1, 2, 3])
def test_next_log_probs_for_fusion(order):
    """The fusion interface: row n is p(token | <s> + history n) for every token id, equal to
    log10_prob in natural log; the sentence log-probability is the sum of its rows (plus
    </s>); rows are shared by histories that end alike, never by shorter ones."""
    lm = train_ngram(_corpus(seed=3), order=order)
    symbols = ["<blk>", "<unk>", "<sos/eos>", *"abcdef"]
    scorer = NgramLmScorer(lm, symbols)
    hists = [[], [3], [4, 3], [5, 4, 3], [3, 3]]
    rows = scorer.next_log_probs(hists)
    assert rows.shape == (5, len(symbols)) and rows.dtype == torch.float32
    for h, row in zip(hists, rows):
        hist = ["<s>", *(symbols[i] for i in h)]
        want = [lm.log10_prob(hist, w) * math.log(10) for w in symbols]
        assert row.tolist() == pytest.approx(want, rel=1e-5)
    # a sentence: the chain rule over next_log_probs, then </s>
    ids = [3, 5, 4, 4]
    chain = sum(float(scorer.next_log_probs([ids[:i]])[0, t]) for i, t in enumerate(ids))
    end = lm.log10_prob(["<s>", *(symbols[i] for i in ids)], EOS) * math.log(10)
    assert chain + end == pytest.approx(lm.log_prob([symbols[i] for i in ids]), rel=1e-5)
    # the empty history (<s>) differs from a one-token one in a bigram or higher model
    if order > 1:
        assert not torch.allclose(rows[0], rows[1])
    assert scorer.next_log_probs([]).shape == (0, len(symbols))
