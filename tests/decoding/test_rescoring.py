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
