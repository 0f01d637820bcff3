import pytest
import torch

from gmot.decoding import AttentionScorer, rescore_nbest


class TargetScorer:
    """log-likelihood 0 for the target of each utterance, -10 otherwise.

    The utterance is identified from encoder_out (row b is filled with the value b), which
    checks that the rescorer passes each hypothesis its own utterance's encoder output.
    """

    def __init__(self, targets):
        self.targets = targets

    def score(self, encoder_out, encoder_out_lens, token_ids):
        assert encoder_out.shape[0] == encoder_out_lens.shape[0] == len(token_ids)
        out = []
        for row, toks in zip(encoder_out, token_ids):
            b = int(row[0, 0])
            out.append(0.0 if toks == self.targets[b] else -10.0)
        return torch.tensor(out)


def test_rescoring_picks_attention_preferred():
    enc = torch.arange(2).float().view(2, 1, 1).expand(2, 3, 4).contiguous()
    lens = torch.tensor([3, 2])
    nbest = [[([1, 2], -1.0), ([1, 3], -2.0)], [([4], -0.5), ([5], -0.7), ([], -3.0)]]
    scorer = TargetScorer({0: [1, 3], 1: [5]})
    assert isinstance(scorer, AttentionScorer)
    assert rescore_nbest(scorer, enc, lens, nbest) == [[1, 3], [5]]
    # attention weight 0: first-pass order wins
    assert rescore_nbest(scorer, enc, lens, nbest, attention_scale=0.0) == [[1, 2], [4]]
    # a tiny attention weight cannot overturn a 1.0 first-pass margin (10 * 0.05 = 0.5)
    assert rescore_nbest(scorer, enc, lens, nbest, attention_scale=0.05) == [[1, 2], [5]]


def test_rescoring_errors():
    with pytest.raises(TypeError, match="score"):
        rescore_nbest(object(), torch.zeros(1, 2, 3), torch.tensor([2]), [[([1], 0.0)]])
    with pytest.raises(ValueError, match="empty n-best"):
        rescore_nbest(TargetScorer({}), torch.zeros(1, 2, 3), torch.tensor([2]), [[]])


def _brute_force_ctc(log_probs, n_frames, tokens, blank=0):
    """log p(tokens) by enumerating every frame path of length n_frames (tiny sizes only)."""
    import itertools
    import math

    v = log_probs.shape[1]
    total = -math.inf
    for path in itertools.product(range(v), repeat=n_frames):
        collapsed = [s for i, s in enumerate(path) if s != blank and (i == 0 or path[i - 1] != s)]
        if collapsed == list(tokens):
            lp = sum(float(log_probs[t, s]) for t, s in enumerate(path))
            total = max(total, lp) + math.log1p(math.exp(-abs(total - lp)))
    return total


def test_ctc_sequence_log_probs_equals_the_sum_over_alignments():
    from gmot.decoding.rescoring import ctc_sequence_log_probs

    torch.manual_seed(0)
    lp = torch.randn(5, 6, 4).log_softmax(-1)
    lens = torch.tensor([6, 6, 5, 6, 3])
    toks = [[1, 2], [1, 1], [3], [], [1, 1, 2]]  # [1, 1, 2] needs 4 frames, row 4 has 3
    got = ctc_sequence_log_probs(lp, lens, toks)
    assert got.dtype == torch.float64 and got.shape == (5,)
    for n in range(4):
        want = _brute_force_ctc(lp[n], int(lens[n]), toks[n])
        assert abs(float(got[n]) - want) < 1e-9, (n, float(got[n]), want)
    assert float(got[4]) == float("-inf")
    with pytest.raises(ValueError, match="row 0: tokens \\[0\\]"):
        ctc_sequence_log_probs(lp[:1], lens[:1], [[0, 2]])


def test_ctc_scorer_rescoring_picks_the_ctc_preferred_hypothesis():
    from gmot.decoding import CtcScorer

    # the CTC head is the identity on log-probabilities: frames say 2, 2, blank, 3
    frames = torch.full((1, 4, 4), -20.0)
    for t, s in enumerate([2, 2, 0, 3]):
        frames[0, t, s] = 0.0
    scorer = CtcScorer(torch.nn.Identity())
    assert isinstance(scorer, AttentionScorer)
    nbest = [[([2, 2, 3], -1.0), ([2, 3], -1.5), ([3], -0.5)]]
    assert rescore_nbest(scorer, frames, torch.tensor([4]), nbest, attention_scale=1.0) == [[2, 3]]
    assert rescore_nbest(scorer, frames, torch.tensor([4]), nbest, attention_scale=0.0) == [[3]]


def test_rescoring_with_impossible_hypotheses():
    """-inf from the scorer (a hypothesis too long for its frames) excludes that hypothesis;
    weight 0 ignores it; where the scorer allows none, the first pass decides."""

    class Impossible:
        def score(self, encoder_out, encoder_out_lens, token_ids):
            return torch.tensor([-float("inf") if len(t) > 1 else -5.0 for t in token_ids])

    enc, lens = torch.zeros(2, 3, 2), torch.tensor([3, 3])
    nbest = [[([1, 2], -1.0), ([1], -2.0)], [([1, 2], -1.0), ([2, 2], -0.5)]]
    assert rescore_nbest(Impossible(), enc, lens, nbest) == [[1], [2, 2]]
    assert rescore_nbest(Impossible(), enc, lens, nbest, attention_scale=0.0) == [[1, 2], [2, 2]]
