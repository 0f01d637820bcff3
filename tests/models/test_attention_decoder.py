"""Attention decoder: label-smoothed loss (brute force), scoring (= -loss without smoothing),
padding/batching invariance, causality."""

from __future__ import annotations

import math

import torch

from gmot.models.attention_decoder import AttentionDecoder, label_smoothing_loss


def test_label_smoothing_loss_brute_force():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 4, -1], [0, 2, 3]])
    eps = 0.1
    expect = 0.0
    for n in range(2):
        for u in range(3):
            if targets[n, u] < 0:
                continue
            logp = torch.log_softmax(logits[n, u], -1)
            for c in range(5):
                q = 1 - eps if c == targets[n, u] else eps / 4
                expect -= q * float(logp[c])
    got = label_smoothing_loss(logits, targets, eps)
    assert math.isclose(float(got), expect, rel_tol=1e-5)


def _dec() -> AttentionDecoder:
    torch.manual_seed(0)
    d = AttentionDecoder(9, 12, attention_dim=16, num_heads=2, feedforward_dim=32, num_layers=2)
    return d.eval()


def test_score_equals_negative_unsmoothed_loss_and_is_batch_invariant():
    d = _dec()
    d.label_smoothing = 0.0
    enc = torch.randn(3, 7, 12)
    lens = torch.tensor([7, 5, 3])
    hyps = [[3, 4, 5], [6], []]
    s = d.score(enc, lens, hyps)
    assert s.shape == (3,)
    with torch.no_grad():
        loss = d(enc, lens, hyps)
    torch.testing.assert_close(s.sum(), -loss, rtol=1e-5, atol=1e-5)
    for n in range(3):  # alone, without padding of frames or tokens
        alone = d.score(enc[n : n + 1, : lens[n]], lens[n : n + 1], [hyps[n]])
        torch.testing.assert_close(alone[0], s[n], rtol=1e-5, atol=1e-5)
    assert bool((s < 0).all())


def test_causal_future_tokens_do_not_change_earlier_logits():
    d = _dec()
    enc = torch.randn(1, 6, 12)
    lens = torch.tensor([6])
    a = d._logits(enc, lens, torch.tensor([[1, 3, 4, 5]]))
    b = d._logits(enc, lens, torch.tensor([[1, 3, 7, 8]]))
    torch.testing.assert_close(a[:, :2], b[:, :2])
    assert not torch.allclose(a[:, 2:], b[:, 2:])
