"""gmot.training.diagnostics: the audio-dependence check (own / other / content-free audio)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gmot.training.diagnostics import audio_dependence, mismatch_order


def test_mismatch_order_is_a_derangement_of_length_neighbours():
    lens = torch.tensor([50, 10, 30, 20, 40])
    perm = mismatch_order(lens)
    assert sorted(perm) == list(range(5))
    assert all(perm[i] != i for i in range(5))
    # sorted by length: 1(10) 3(20) 2(30) 4(40) 0(50); each takes the next one, the last the first
    assert perm == [1, 3, 4, 2, 0]
    with pytest.raises(ValueError, match="B >= 2"):
        mismatch_order(torch.tensor([7]))


class _Probe(nn.Module):
    """Stand-in model whose 'losses' are simple functions of what it is fed, so the expected
    values can be computed by hand: pruned = sum over utterances of (number of tokens) x (sum of
    its valid features); frames = sum of lengths."""

    def forward(self, x, x_lens, token_ids, compute_gmot=False, prune_range=5):
        total = torch.zeros(())
        for b, y in enumerate(token_ids):
            total = total + len(y) * x[b, : int(x_lens[b])].sum()
        return {"pruned": total, "info": {"frames": int(x_lens.sum())}}


def test_audio_dependence_feeds_own_other_and_constant_inputs():
    g = torch.Generator().manual_seed(0)
    B, T, F = 3, 6, 2
    lens = torch.tensor([6, 4, 5])
    x = torch.randn(B, T, F, generator=g)
    for b in range(B):
        x[b, int(lens[b]) :] = 0.0
    ids = [[1], [1, 2], [1, 2, 3]]
    res = audio_dependence(_Probe(), x, lens, ids)
    frames = float(lens.sum())
    own = sum(len(ids[b]) * float(x[b, : lens[b]].sum()) for b in range(B)) / frames
    # lengths 6, 4, 5 -> sorted 1, 2, 0 -> utterance 1 gets 2's audio, 2 gets 0's, 0 gets 1's
    perm = [1, 2, 0]
    other = sum(len(ids[b]) * float(x[perm[b], : lens[perm[b]]].sum()) for b in range(B))
    other /= float(lens[perm].sum())
    assert res["own"]["pruned"] == pytest.approx(own, rel=1e-6)
    assert res["other"]["pruned"] == pytest.approx(other, rel=1e-6)
    # replacing every frame by the utterance mean keeps each utterance's feature sum
    assert res["constant"]["pruned"] == pytest.approx(own, rel=1e-5)


def test_audio_dependence_real_model_identical_audio_gives_identical_losses():
    from gmot.models.asr_model import build_model

    torch.manual_seed(0)
    model = build_model(
        {"vocab_size": 20, "encoder": "tiny", "decoder_dim": 16, "joiner_dim": 16, "use_ctc": True}
    ).eval()
    one = torch.randn(1, 120, 80)
    ids = [[3, 4, 5], [6, 7], [8, 9, 10, 11]]
    res = audio_dependence(model, one.repeat(3, 1, 1), torch.full((3,), 120), ids)
    for head in ("simple", "pruned", "ctc"):
        assert res["own"][head] > 0 and res["other"][head] == pytest.approx(res["own"][head])
    # different audio per utterance: the swapped-audio losses differ from the own-audio ones
    res2 = audio_dependence(model, torch.randn(3, 120, 80), torch.full((3,), 120), ids)
    assert all(res2["other"][h] != pytest.approx(res2["own"][h], rel=1e-6) for h in res2["own"])
