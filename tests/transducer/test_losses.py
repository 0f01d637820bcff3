"""RNN-T losses: brute force, torchaudio, pruned == full, simple-loss invariances, bad input."""

from __future__ import annotations

import pytest
import torch
from rnnt_reference import brute_force_logits_loss, naive_scores

from gmot.transducer import (
    get_rnnt_prune_ranges,
    rnnt_loss,
    rnnt_loss_pruned,
    rnnt_loss_simple,
    rnnt_loss_smoothed,
)
from gmot.transducer.losses import get_rnnt_logprobs_joint

TYPES = ["regular", "modified", "constrained"]


def _data(B, T, S, C, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, S + 1, C, generator=g, dtype=dtype)
    symbols = torch.randint(1, C, (B, S), generator=g)
    return logits, symbols


@pytest.mark.parametrize("rnnt_type", TYPES)
@pytest.mark.parametrize("S,T", [(0, 2), (1, 3), (2, 3), (3, 4)])
def test_full_loss_matches_brute_force(backend, rnnt_type, S, T):
    if S == 0 and backend != "builtin":
        # fast_rnnt 1.3 and k2 releases with validate_st_lengths assert S >= 1 when boundary is
        # None; ours takes S = 0 (an empty transcript: the blank-only path).
        pytest.skip(f"{backend} asserts S >= 1 without a boundary")
    logits, symbols = _data(2, T, S, 5, seed=S * 10 + T)
    got = rnnt_loss(logits, symbols, 0, rnnt_type=rnnt_type, reduction="none")
    want = brute_force_logits_loss(logits, symbols, 0, rnnt_type)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("blank", [0, 4])
def test_full_loss_matches_torchaudio(backend, blank):
    ta = pytest.importorskip("torchaudio.functional")
    B, T, S, C = 4, 12, 5, 7
    logits, _ = _data(B, T, S, C, seed=11, dtype=torch.float32)
    g = torch.Generator().manual_seed(12)
    symbols = torch.randint(0, C - 1, (B, S), generator=g)
    symbols[symbols >= blank] += 1  # never the blank
    t_lens = torch.tensor([12, 9, 12, 5])
    s_lens = torch.tensor([5, 3, 0, 5])
    if backend != "builtin":
        s_lens[2] = 1  # k2 and fast_rnnt assert every s_end >= 1; ours takes an empty transcript
    boundary = torch.stack([torch.zeros(B), torch.zeros(B), s_lens, t_lens], 1).long()
    for reduction in ["none", "mean", "sum"]:
        lg1 = logits.clone().requires_grad_()
        ours = rnnt_loss(lg1, symbols, blank, boundary=boundary, reduction=reduction)
        lg2 = logits.clone().requires_grad_()
        ref = ta.rnnt_loss(
            lg2, symbols.int(), t_lens.int(), s_lens.int(), blank=blank, reduction=reduction
        )
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-4)
        (ours.sum()).backward()
        (ref.sum()).backward()
        torch.testing.assert_close(lg1.grad, lg2.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("rnnt_type", TYPES)
def test_pruned_equals_full_when_window_covers_all(backend, rnnt_type):
    B, T, S, C = 3, 10, 4, 6
    logits, symbols = _data(B, T, S, C, seed=13)
    boundary = torch.tensor([[0, 0, 4, 10], [0, 0, 2, 7], [0, 0, 4, 5]])
    full = rnnt_loss(logits, symbols, 0, boundary=boundary, rnnt_type=rnnt_type, reduction="none")
    for s_range in [S + 1, S + 3]:
        px_g = torch.zeros(B, S, T + 1 if rnnt_type == "regular" else T, dtype=torch.float64)
        py_g = torch.zeros(B, S + 1, T, dtype=torch.float64)
        ranges = get_rnnt_prune_ranges(px_g, py_g, boundary, s_range)
        assert ranges.shape == (B, T, S + 1)
        pruned_logits = logits  # window covers every s: the pruned logits are the full ones
        pruned = rnnt_loss_pruned(
            pruned_logits,
            symbols,
            ranges,
            0,
            boundary=boundary,
            rnnt_type=rnnt_type,
            reduction="none",
        )
        torch.testing.assert_close(pruned, full)


def test_simple_equals_full_on_sum_logits(backend):
    B, T, S, C = 2, 6, 3, 8
    g = torch.Generator().manual_seed(14)
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64) * 3
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64) * 3
    symbols = torch.randint(1, C, (B, S), generator=g)
    for rnnt_type in TYPES:
        simple = rnnt_loss_simple(lm, am, symbols, 0, rnnt_type=rnnt_type, reduction="none")
        full = rnnt_loss(
            am.unsqueeze(2) + lm.unsqueeze(1), symbols, 0, rnnt_type=rnnt_type, reduction="none"
        )
        torch.testing.assert_close(simple, full)


def test_simple_invariant_to_frame_and_position_constants(backend):
    B, T, S, C = 2, 7, 3, 6
    g = torch.Generator().manual_seed(15)
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    base = rnnt_loss_simple(lm, am, symbols, 0, reduction="none")
    am2 = am + 50 * torch.randn(B, T, 1, generator=g, dtype=torch.float64)
    lm2 = lm + 50 * torch.randn(B, S + 1, 1, generator=g, dtype=torch.float64)
    torch.testing.assert_close(rnnt_loss_simple(lm2, am2, symbols, 0, reduction="none"), base)
    # but not to a per-class change (sanity: the test can fail)
    am3 = am.clone()
    am3[:, :, 0] += 1.0
    assert (rnnt_loss_simple(lm, am3, symbols, 0, reduction="none") - base).abs().min() > 1e-3


def test_smoothed_matches_explicit_interpolation(builtin_backend):
    B, T, S, C = 2, 6, 3, 5
    g = torch.Generator().manual_seed(16)
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    lm_s, am_s = 0.25, 0.1
    joint = (am.unsqueeze(2) + lm.unsqueeze(1)).log_softmax(-1)  # (B, T, S+1, C)
    lm_only = lm.log_softmax(-1).unsqueeze(1).expand(B, T, S + 1, C)
    unigram = lm.softmax(-1).reshape(-1, C).mean(0)
    am_only = (am + unigram.log()).log_softmax(-1).unsqueeze(2).expand(B, T, S + 1, C)
    mix = (1 - lm_s - am_s) * joint + lm_s * lm_only + am_s * am_only
    # rnnt_loss re-normalises; mix is already log-probs only per component, so build px/py.
    px, py = get_rnnt_logprobs_joint(mix, symbols, 0)
    norm = torch.logsumexp(mix, -1).transpose(1, 2)  # undo the joint normaliser
    px = px.clone()
    px[:, :, :T] += norm[:, :S]
    py = py + norm
    want = -naive_scores(px, py)
    got = rnnt_loss_smoothed(
        lm, am, symbols, 0, lm_only_scale=lm_s, am_only_scale=am_s, reduction="none"
    )
    torch.testing.assert_close(got, want)
    # zero scales: equals the simple loss (up to the 1e-20 stand-ins)
    simple = rnnt_loss_simple(lm, am, symbols, 0, reduction="none")
    zero = rnnt_loss_smoothed(lm, am, symbols, 0, 0.0, 0.0, reduction="none")
    torch.testing.assert_close(zero, simple)


def test_smoothed_return_grad(backend):
    B, T, S, C = 2, 6, 3, 5
    g = torch.Generator().manual_seed(17)
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    loss, (gx, gy) = rnnt_loss_smoothed(
        lm, am, symbols, 0, 0.25, 0.0, reduction="sum", return_grad=True
    )
    assert gx.shape == (B, S, T + 1) and gy.shape == (B, S + 1, T)
    torch.testing.assert_close(gy.sum(1), torch.ones(B, T, dtype=torch.float64))
    torch.testing.assert_close(gx.sum(2), torch.ones(B, S, dtype=torch.float64))


def test_delay_penalty(backend):
    B, T, S, C = 2, 6, 3, 5
    logits, symbols = _data(B, T, S, C, seed=18)
    boundary = torch.tensor([[0, 0, 3, 6], [0, 0, 2, 4]])
    lam = 0.3
    got = rnnt_loss(logits, symbols, 0, boundary=boundary, delay_penalty=lam, reduction="none")
    px, py = get_rnnt_logprobs_joint(logits, symbols, 0, boundary)
    t = torch.arange(T + 1, dtype=torch.float64)
    pen = lam * ((boundary[:, 3].double().view(B, 1, 1) - 1) / 2 - t.view(1, 1, -1))
    want = -naive_scores(px + pen, py, boundary)
    torch.testing.assert_close(got, want)


def test_reductions(backend):
    logits, symbols = _data(3, 5, 2, 4, seed=19)
    none = rnnt_loss(logits, symbols, 0, reduction="none")
    torch.testing.assert_close(rnnt_loss(logits, symbols, 0, reduction="sum"), none.sum())
    torch.testing.assert_close(rnnt_loss(logits, symbols, 0), none.mean())


def test_bad_inputs(builtin_backend):
    logits, symbols = _data(2, 3, 4, 6)
    with pytest.raises(ValueError, match="labels longer than frames"):
        rnnt_loss(logits, symbols, 0, rnnt_type="modified")
    with pytest.raises(ValueError, match="labels longer than frames"):
        rnnt_loss(logits, symbols, 0, rnnt_type="constrained")
    rnnt_loss(logits, symbols, 0, rnnt_type="regular")  # fine for regular
    logits, symbols = _data(2, 5, 2, 6)
    bad = symbols.clone()
    bad[0, 0] = 6
    with pytest.raises(ValueError, match="symbols"):
        rnnt_loss(logits, bad, 0)
    bad[0, 0] = -1
    with pytest.raises(ValueError, match="symbols"):
        rnnt_loss(logits, bad, 0)
    with pytest.raises(TypeError, match="symbols"):
        rnnt_loss(logits, symbols.float(), 0)
    with pytest.raises(TypeError, match="logits"):
        rnnt_loss(logits.half(), symbols, 0)
    with pytest.raises(ValueError, match="logits"):
        rnnt_loss(logits[:, :, :2], symbols, 0)
    with pytest.raises(ValueError, match="termination_symbol"):
        rnnt_loss(logits, symbols, 6)
    with pytest.raises(ValueError, match="rnnt_type"):
        rnnt_loss(logits, symbols, 0, rnnt_type="hat")
    with pytest.raises(ValueError, match="reduction"):
        rnnt_loss(logits, symbols, 0, reduction="avg")
    with pytest.raises(ValueError, match="boundary"):
        rnnt_loss(logits, symbols, 0, boundary=torch.zeros(3, 4, dtype=torch.int64))
    am = torch.randn(2, 5, 6, dtype=torch.float64)
    lm = torch.randn(2, 3, 6, dtype=torch.float64)
    with pytest.raises(TypeError, match="am"):
        rnnt_loss_simple(lm, am.to(torch.bfloat16), symbols, 0)
    with pytest.raises(ValueError, match="lm"):
        rnnt_loss_simple(lm[:, :, :5], am, symbols, 0)
    with pytest.raises(ValueError, match="symbols"):
        rnnt_loss_simple(lm[:, :2], am, symbols, 0)
    ranges = torch.zeros(2, 5, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="ranges"):
        rnnt_loss_pruned(logits[:, :, :3], symbols, ranges[:, :4], 0)
    with pytest.raises(ValueError, match="ranges"):
        rnnt_loss_pruned(logits, symbols, ranges + torch.arange(3) + 1, 0)  # past S=2
    with pytest.raises(TypeError, match="ranges"):
        rnnt_loss_pruned(logits[:, :, :3], symbols, ranges.int(), 0)
