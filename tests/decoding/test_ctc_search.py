import itertools
import math

import pytest
import torch

from gmot.decoding import ctc_greedy_search, ctc_prefix_beam_search


def _onehot_logprobs(path, V, p=0.9):
    probs = torch.full((len(path), V), (1 - p) / (V - 1))
    for t, tok in enumerate(path):
        probs[t, tok] = p
    return probs.log()


def test_ctc_greedy_collapses_repeats_and_drops_blanks():
    a = _onehot_logprobs([0, 1, 1, 0, 1, 2, 2, 0], V=4)
    b = _onehot_logprobs([3, 3, 3, 0, 0, 0, 0, 0], V=4)
    lp = torch.stack([a, b])
    assert ctc_greedy_search(lp, torch.tensor([8, 3])) == [[1, 1, 2], [3]]
    # lens truncates: frames after 5 ignored
    assert ctc_greedy_search(lp, torch.tensor([5, 8])) == [[1, 1], [3]]


def _brute_force(lp):
    """Label sequence probabilities by summing all V^T alignments."""
    T, V = lp.shape
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(V), repeat=T):
        labels, prev = [], None
        for tok in path:
            if tok != prev and tok != 0:
                labels.append(tok)
            prev = tok
        s = float(sum(lp[t, tok] for t, tok in enumerate(path)))
        key = tuple(labels)
        totals[key] = (
            s
            if key not in totals
            else float(torch.logaddexp(torch.tensor(totals[key]), torch.tensor(s)))
        )
    return totals


@pytest.mark.parametrize("seed", range(4))
def test_prefix_beam_large_beam_equals_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    T, V = 5, 3
    lp = (torch.randn(1, T, V, generator=g) * 1.5).log_softmax(-1)
    totals = _brute_force(lp[0])
    best = max(totals, key=totals.get)
    nbest = ctc_prefix_beam_search(lp, torch.tensor([T]), beam=1000, return_nbest=True)[0]
    assert tuple(nbest[0][0]) == best
    assert len(nbest) == len(totals)
    for toks, s in nbest:
        assert math.isclose(s, totals[tuple(toks)], abs_tol=1e-5)
    assert ctc_prefix_beam_search(lp, torch.tensor([T]), beam=1000) == [list(best)]


def test_prefix_beam_beats_best_path():
    # blank 0.6 / a 0.4 on two frames: best path is blank-blank (0.36, label ""), but label
    # "a" has aa + a_ + _a = 0.16 + 0.24 + 0.24 = 0.64.
    lp = torch.tensor([[[0.6, 0.4], [0.6, 0.4]]]).log()
    assert ctc_greedy_search(lp, torch.tensor([2])) == [[]]
    nbest = ctc_prefix_beam_search(lp, torch.tensor([2]), beam=4, return_nbest=True)[0]
    assert nbest[0][0] == [1]
    assert math.isclose(math.exp(nbest[0][1]), 0.64, rel_tol=1e-6)
    assert math.isclose(math.exp(nbest[1][1]), 0.36, rel_tol=1e-6)


def test_prefix_beam_batch_and_lens():
    g = torch.Generator().manual_seed(5)
    lp = torch.randn(2, 6, 4, generator=g).log_softmax(-1)
    lens = torch.tensor([6, 4])
    out = ctc_prefix_beam_search(lp, lens, beam=8)
    assert out[1] == ctc_prefix_beam_search(lp[1:, :4], lens[1:], beam=8)[0]
    for h in out:
        assert all(0 < x < 4 for x in h)


def test_ctc_bad_input():
    with pytest.raises(ValueError, match="ctc_log_probs"):
        ctc_greedy_search(torch.zeros(3, 4), torch.tensor([3]))
    with pytest.raises(ValueError, match="lens max"):
        ctc_prefix_beam_search(torch.zeros(1, 3, 4), torch.tensor([5]))
