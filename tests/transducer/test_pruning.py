"""Prune ranges and pruning: properties, adjustment, pruned loss on large random lattices."""

from __future__ import annotations

import pytest
import torch
from rnnt_reference import naive_scores

from gmot.transducer import (
    do_rnnt_pruning,
    get_rnnt_prune_ranges,
    rnnt_loss,
    rnnt_loss_pruned,
    rnnt_loss_simple,
)
from gmot.transducer.losses import get_rnnt_logprobs_joint
from gmot.transducer.pruning import _adjust_lower_bound

TYPES = ["regular", "modified", "constrained"]


def _case(B, T_max, S_max, C, rnnt_type, seed):
    g = torch.Generator().manual_seed(seed)
    t_lens = torch.randint(max(2, T_max // 2), T_max + 1, (B,), generator=g)
    t_lens[0] = T_max
    s_lens = torch.randint(1, S_max + 1, (B,), generator=g)
    s_lens[0] = S_max
    if rnnt_type != "regular":
        s_lens = torch.minimum(s_lens, t_lens)
    boundary = torch.stack([torch.zeros(B), torch.zeros(B), s_lens, t_lens], 1).long()
    am = torch.randn(B, T_max, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S_max + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S_max), generator=g)
    return am, lm, symbols, boundary


def _check_ranges(ranges, boundary, s_range, S, regular):
    B, T, R = ranges.shape
    assert R == s_range
    assert torch.equal(ranges - ranges[:, :, :1], torch.arange(R).expand(B, T, R))
    start = ranges[:, :, 0]
    step = start[:, 1:] - start[:, :-1]
    assert (start[:, 0] == 0).all(), "ranges must start at 0"
    assert (step >= 0).all(), "ranges must be monotone"
    assert (step <= (R - 1 if regular else 1)).all(), "step too large: would skip a symbol"
    # consecutive windows overlap: the next window's first symbol is in this window
    assert (ranges[:, 1:, 0] <= ranges[:, :-1, -1]).all()
    assert (ranges >= 0).all() and (ranges <= S).all()
    for b, (_, _, s_end, t_end) in enumerate(boundary.tolist()):
        assert int(ranges[b, t_end - 1, -1]) >= s_end, "last frame must reach the last symbol"


@pytest.mark.parametrize("rnnt_type", TYPES)
@pytest.mark.parametrize("s_range", [2, 3, 5])
def test_ranges_properties(backend, rnnt_type, s_range):
    am, lm, symbols, boundary = _case(4, 40, 12, 8, rnnt_type, seed=s_range)
    _, (gx, gy) = rnnt_loss_simple(
        lm,
        am,
        symbols,
        0,
        boundary=boundary,
        rnnt_type=rnnt_type,
        reduction="sum",
        return_grad=True,
    )
    ranges = get_rnnt_prune_ranges(gx, gy, boundary, s_range)
    _check_ranges(ranges, boundary, ranges.shape[2], 12, rnnt_type == "regular")


def test_ranges_follow_a_peaked_path(builtin_backend):
    # Occupation mass on one path: symbol s emitted at frame 2 s (regular lattice, S=4, T=10).
    B, S, T = 1, 4, 10
    gx = torch.zeros(B, S, T + 1, dtype=torch.float64)
    gy = torch.zeros(B, S + 1, T, dtype=torch.float64)
    s = 0
    for t in range(T):
        if t % 2 == 0 and s < S:
            gx[0, s, t] = 1.0
            s += 1
        gy[0, s, t] = 1.0
    boundary = torch.tensor([[0, 0, S, T]])
    ranges = get_rnnt_prune_ranges(gx, gy, boundary, 2)
    for t in range(T):
        s_at_t = int(gy[0, :, t].argmax())
        assert ranges[0, t, 0] <= s_at_t <= ranges[0, t, -1]


def test_s_range_adjustments(builtin_backend):
    B, S, T = 2, 6, 3
    gx = torch.rand(B, S, T + 1, dtype=torch.float64)
    gy = torch.rand(B, S + 1, T, dtype=torch.float64)
    boundary = torch.tensor([[0, 0, 6, 3], [0, 0, 2, 3]])
    with pytest.warns(UserWarning, match="s_range"):
        ranges = get_rnnt_prune_ranges(gx, gy, boundary, 2)
    assert ranges.shape[2] == (6 - 1) // 3 + 2
    assert get_rnnt_prune_ranges(gx, gy, boundary, 10).shape[2] == S + 1
    with pytest.raises(ValueError, match="s_range"):
        get_rnnt_prune_ranges(gx, gy, boundary, 0)
    # no symbols at all: a single window [0, 1)
    r0 = get_rnnt_prune_ranges(gx[:, :0], gy[:, :1], torch.tensor([[0, 0, 0, 3]] * 2), 5)
    assert torch.equal(r0, torch.zeros(2, 3, 1, dtype=torch.int64))
    with pytest.raises(ValueError, match="boundary"):
        get_rnnt_prune_ranges(gx, gy, boundary[:1], 3)


def test_adjust_lower_bound_brute_force():
    """The adjusted starts are the smallest feasible sequence (o[0] = 0, steps in [0, k]) lying
    above c = min(reverse running min of the raw starts, t * k): checked by enumeration."""
    import itertools

    g = torch.Generator().manual_seed(3)
    for _ in range(40):
        T = int(torch.randint(1, 6, (1,), generator=g))
        k = int(torch.randint(1, 4, (1,), generator=g))
        raw = torch.randint(-2, 12, (1, T), generator=g)
        out = _adjust_lower_bound(raw, k)[0].tolist()
        r = raw[0].clamp(min=0).tolist()
        c = [min(min(r[t:]), t * k) for t in range(T)]
        best = None
        for steps in itertools.product(range(k + 1), repeat=T - 1):
            o = [0]
            for d in steps:
                o.append(o[-1] + d)
            if all(o[t] >= c[t] for t in range(T)):
                best = o if best is None else [min(a, b) for a, b in zip(best, o)]
        assert out == best, (raw.tolist(), k, out, best)


def test_do_rnnt_pruning_values(backend):
    B, T, S, D = 2, 5, 4, 3
    am = torch.randn(B, T, D)
    lm = torch.randn(B, S + 1, D)
    ranges = torch.tensor([[0, 0, 1, 2, 3]] * B).unsqueeze(2) + torch.arange(2)
    am_p, lm_p = do_rnnt_pruning(am, lm, ranges)
    assert am_p.shape == lm_p.shape == (B, T, 2, D)
    for b in range(B):
        for t in range(T):
            for r in range(2):
                assert torch.equal(am_p[b, t, r], am[b, t])
                assert torch.equal(lm_p[b, t, r], lm[b, int(ranges[b, t, r])])


def _pruned_case(rnnt_type, s_range, B, T_max, S_max, C, seed):
    am, lm, symbols, boundary = _case(B, T_max, S_max, C, rnnt_type, seed)
    _, (gx, gy) = rnnt_loss_simple(
        lm,
        am,
        symbols,
        0,
        boundary=boundary,
        rnnt_type=rnnt_type,
        reduction="sum",
        return_grad=True,
    )
    ranges = get_rnnt_prune_ranges(gx, gy, boundary, s_range)
    _check_ranges(ranges, boundary, ranges.shape[2], S_max, rnnt_type == "regular")
    logits_full = am.unsqueeze(2) + lm.unsqueeze(1)  # (B, T, S+1, C)
    am_p, lm_p = do_rnnt_pruning(am, lm, ranges)
    pruned = rnnt_loss_pruned(
        am_p + lm_p, symbols, ranges, 0, boundary=boundary, rnnt_type=rnnt_type, reduction="none"
    )
    # Expectation: full-lattice px/py with every arc outside the windows set to -inf.
    # (constrained: px += py[:, 1:] with the pruned py, so add after masking)
    base_type = "modified" if rnnt_type == "constrained" else rnnt_type
    px, py = get_rnnt_logprobs_joint(logits_full, symbols, 0, boundary, base_type)
    keep = torch.zeros(B, T_max, S_max + 1, dtype=torch.bool)
    keep.scatter_(2, ranges, True)
    keep = keep.transpose(1, 2)  # (B, S+1, T)
    py = py.masked_fill(~keep, float("-inf"))
    px = px.clone()
    px[:, :, :T_max] = px[:, :, :T_max].masked_fill(~keep[:, :S_max], float("-inf"))
    if rnnt_type == "constrained":
        px = px + py[:, 1:]
    want = -naive_scores(px, py, boundary)
    torch.testing.assert_close(pruned, want, rtol=1e-9, atol=1e-8)
    full = rnnt_loss(
        logits_full, symbols, 0, boundary=boundary, rnnt_type=rnnt_type, reduction="none"
    )
    assert torch.isfinite(pruned).all()
    assert (pruned >= full - 1e-9).all()  # a sub-lattice has fewer paths


@pytest.mark.parametrize("rnnt_type", TYPES)
@pytest.mark.parametrize("s_range", [2, 5, 51])
def test_pruned_random_large(backend, rnnt_type, s_range):
    """B=4, T <= 300, S <= 50, float64: pruned loss == masked-lattice reference."""
    _pruned_case(rnnt_type, s_range, B=4, T_max=300, S_max=50, C=6, seed=s_range)


@pytest.mark.slow
@pytest.mark.parametrize("rnnt_type", TYPES)
@pytest.mark.parametrize("s_range", [2, 3, 4, 5, 6, 8, 12, 20, 40, 51, 60])
def test_pruned_random_sweep(backend, rnnt_type, s_range):
    for seed in range(10, 16):
        _pruned_case(rnnt_type, s_range, B=4, T_max=300, S_max=50, C=10, seed=seed)
