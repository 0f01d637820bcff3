"""k2 drop-in behaviour (issue 24): arguments k2 accepts, functions k2 exports, k2's semantics.

References are independent of gmot's lattice code: log_softmax over the materialised joint,
path-count identities that hold for every path, torchaudio's RNN-T loss, and k2's documented
rules for ``s_range``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from rnnt_reference import naive_scores

import gmot.transducer as G

TYPES = ["regular", "modified", "constrained"]


def _small_symbols_case(seed: int = 0):
    """k2's test_rnnt_loss_pruned_small_symbols_number setting: S_max = 2, T up to 19."""
    g = torch.Generator().manual_seed(seed)
    B, C = 2, 10
    frames = torch.tensor([19, 7])
    seq_lengths = torch.tensor([2, 1])
    T, S = int(frames.max()), int(seq_lengths.max())
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(0, C - 1, (B, S), generator=g)
    boundary = torch.zeros(B, 4, dtype=torch.int64)
    boundary[:, 2] = seq_lengths
    boundary[:, 3] = frames
    return am, lm, symbols, boundary, C - 1


@pytest.mark.parametrize("rnnt_type", ["modified", "constrained"])
def test_s_range_one_accepted_for_modified_and_constrained(builtin_backend, rnnt_type):
    """k2 accepts s_range >= 1 when at most one symbol is emitted per frame. With s_range = 1 the
    window is a single position whose start moves by at most 1 per frame; the pruned lattice is
    a subset of the full one, so its loss is not below the full loss (and finite except for
    constrained RNN-T with one position, see below)."""
    am, lm, symbols, boundary, blank = _small_symbols_case()
    S = symbols.shape[1]
    full = G.rnnt_loss(
        torch.sigmoid(am.unsqueeze(2) + lm.unsqueeze(1)),
        symbols,
        blank,
        boundary=boundary,
        rnnt_type=rnnt_type,
        reduction="none",
    )
    _, (gx, gy) = G.rnnt_loss_simple(
        lm, am, symbols, blank, boundary=boundary, rnnt_type=rnnt_type, return_grad=True
    )
    for r in range(1, S + 2):
        ranges = G.get_rnnt_prune_ranges(gx, gy, boundary, r)
        assert ranges.shape[2] == min(r, S + 1)
        step = ranges[:, 1:, 0] - ranges[:, :-1, 0]
        assert (ranges[:, 0, 0] == 0).all() and (step >= 0).all() and (step <= 1).all()
        for b, (_, _, s_end, t_end) in enumerate(boundary.tolist()):
            assert int(ranges[b, t_end - 1, -1]) >= s_end
        am_p, lm_p = G.do_rnnt_pruning(am, lm, ranges)
        pruned = G.rnnt_loss_pruned(
            torch.sigmoid(am_p + lm_p),
            symbols,
            ranges,
            blank,
            boundary=boundary,
            rnnt_type=rnnt_type,
            reduction="none",
        )
        if rnnt_type == "constrained" and r == 1:
            # Constrained emission at (s, t) also takes the blank of context s + 1 on frame t,
            # which a one-position window never holds: no path survives (as in k2).
            assert torch.isinf(pruned).all() and (pruned > 0).all()
            continue
        assert torch.isfinite(pruned).all(), (r, pruned)
        assert (pruned >= full - 1e-9).all()
        if r == S + 1:  # the window covers every symbol: no pruning at all
            torch.testing.assert_close(pruned, full, rtol=1e-10, atol=1e-10)


def test_s_range_one_regular_raised_to_minimum(builtin_backend):
    """Regular RNN-T needs two symbols per window; k2 raises s_range itself (with a warning)."""
    am, lm, symbols, boundary, blank = _small_symbols_case(1)
    _, (gx, gy) = G.rnnt_loss_simple(lm, am, symbols, blank, boundary=boundary, return_grad=True)
    with pytest.warns(UserWarning, match="s_range"):
        ranges = G.get_rnnt_prune_ranges(gx, gy, boundary, 1)
    assert ranges.shape[2] == 2
    assert torch.equal(ranges, G.get_rnnt_prune_ranges(gx, gy, boundary, 2))


def test_s_range_integer_like_values(builtin_backend):
    """numpy integers and one-element integer tensors are s_range values as k2 takes them."""
    am, lm, symbols, boundary, blank = _small_symbols_case(2)
    _, (gx, gy) = G.rnnt_loss_simple(
        lm, am, symbols, blank, boundary=boundary, rnnt_type="modified", return_grad=True
    )
    want = G.get_rnnt_prune_ranges(gx, gy, boundary, 2)
    for r in (np.int64(2), np.int32(2), torch.tensor(2), torch.tensor([2], dtype=torch.int32)):
        assert torch.equal(G.get_rnnt_prune_ranges(gx, gy, boundary, r), want), type(r)
    for bad in (True, 2.0, torch.tensor(2.0), "2"):
        with pytest.raises(TypeError, match="s_range"):
            G.get_rnnt_prune_ranges(gx, gy, boundary, bad)
    with pytest.raises(ValueError, match="s_range"):
        G.get_rnnt_prune_ranges(gx, gy, boundary, 0)


@pytest.mark.parametrize("modified", [False, True])
def test_joint_mutual_information_recursion(builtin_backend, modified):
    """k2's contract: the rows sum to the score of the summed lattice, and backprop through the
    rows gives the occupation probabilities (the gradient of that score) for each term's inputs.
    Per-term values follow from path counts: every path inside the box takes s_end - s_begin px
    arcs and (t_end - t_begin) (regular) or (t_end - t_begin) - (s_end - s_begin) (modified) py
    arcs, so a term that is a constant c on all px arcs contributes exactly c * (px arcs)."""
    g = torch.Generator().manual_seed(5)
    B, S, T = 3, 4, 7
    T1 = T if modified else T + 1
    px = torch.randn(B, S, T1, generator=g, dtype=torch.float64)
    py = torch.randn(B, S + 1, T, generator=g, dtype=torch.float64)
    if not modified:
        px[:, :, -1] = float("-inf")  # as get_rnnt_logprobs leaves the last column
    boundary = torch.tensor([[0, 0, 4, 7], [1, 2, 3, 6], [0, 1, 2, 5]])
    c_x, c_y = 0.7, -0.3
    px_c = torch.full_like(px, c_x)
    py_c = torch.full_like(py, c_y)

    px1, py1 = px.clone().requires_grad_(), py.clone().requires_grad_()
    m = G.joint_mutual_information_recursion((px1, px_c), (py1, py_c), boundary)
    assert m.shape == (2, B)
    want = naive_scores(px + c_x, py + c_y, boundary)
    torch.testing.assert_close(m.sum(0), want, rtol=1e-12, atol=1e-12)
    n_x = boundary[:, 2] - boundary[:, 0]
    n_y = boundary[:, 3] - boundary[:, 1] - (n_x if modified else 0)
    want_1 = c_x * n_x.double() + c_y * n_y.double()
    torch.testing.assert_close(m[1], want_1, rtol=1e-12, atol=1e-12)
    assert torch.isfinite(m).all()

    # Backprop through the rows' sum: the gradient of the total score (occupations) for every
    # term; through row n alone: that gradient for term n's inputs and none for the others.
    px2, py2 = px.clone().requires_grad_(), py.clone().requires_grad_()
    G.mutual_information_recursion(px2 + c_x, py2 + c_y, boundary).sum().backward()
    occ_x, occ_y = px2.grad, py2.grad
    pxc, pyc = px_c.clone().requires_grad_(), py_c.clone().requires_grad_()
    for rows in ((0, 1), (0,), (1,)):
        for t in (px1, py1, pxc, pyc):
            t.grad = None
        m = G.joint_mutual_information_recursion((px1, pxc), (py1, pyc), boundary)
        (3.0 * m[list(rows)].sum()).backward()
        for n, (gx, gy) in enumerate(((px1.grad, py1.grad), (pxc.grad, pyc.grad))):
            k = 3.0 if n in rows else 0.0
            torch.testing.assert_close(gx, k * occ_x, rtol=1e-12, atol=1e-12)
            torch.testing.assert_close(gy, k * occ_y, rtol=1e-12, atol=1e-12)
    # One term, or the inputs split in halves: the same scores (k2's basic test).
    m1 = G.joint_mutual_information_recursion((px,), (py,), boundary)
    mh = G.joint_mutual_information_recursion((px * 0.5, px * 0.5), (py * 0.5, py * 0.5), boundary)
    torch.testing.assert_close(m1[0], naive_scores(px, py, boundary), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mh.sum(0), m1[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rnnt_type", TYPES)
def test_get_rnnt_logprobs_exported_in_k2_order(builtin_backend, rnnt_type):
    """gmot.transducer exports the four get_rnnt_logprobs* functions; get_rnnt_logprobs takes
    (..., rnnt_type, boundary) positionally as k2 does. Reference: log_softmax of the
    materialised joint am + lm (the simple joint's definition)."""
    g = torch.Generator().manual_seed(7)
    B, S, T, C = 2, 3, 6, 5
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    boundary = torch.tensor([[0, 0, 3, 6], [0, 0, 2, 4]])
    logp = (am.unsqueeze(2) + lm.unsqueeze(1)).log_softmax(-1)  # (B, T, S+1, C)
    px_ref = torch.gather(logp[:, :, :S], 3, symbols.view(B, 1, S, 1).expand(B, T, S, 1))
    px_ref = px_ref.squeeze(3).transpose(1, 2)  # (B, S, T)
    py_ref = logp[..., 0].transpose(1, 2)  # (B, S+1, T)
    if rnnt_type == "constrained":
        px_ref = px_ref + py_ref[:, 1:]
    if rnnt_type == "regular":
        px_ref = torch.cat([px_ref, px_ref.new_full((B, S, 1), float("-inf"))], 2)
        for b, t_end in enumerate(boundary[:, 3].tolist()):
            px_ref[b, :, t_end] = float("-inf")

    px, py = G.get_rnnt_logprobs(lm, am, symbols, 0, rnnt_type, boundary)
    torch.testing.assert_close(px, px_ref)
    torch.testing.assert_close(py, py_ref)
    px_j, py_j = G.get_rnnt_logprobs_joint(
        am.unsqueeze(2) + lm.unsqueeze(1), symbols, 0, boundary, rnnt_type
    )
    torch.testing.assert_close(px_j, px_ref)
    torch.testing.assert_close(py_j, py_ref)
    px_s, py_s = G.get_rnnt_logprobs_smoothed(lm, am, symbols, 0, 0.0, 0.0, boundary, rnnt_type)
    torch.testing.assert_close(px_s, px_ref)
    torch.testing.assert_close(py_s, py_ref)
    ranges = torch.arange(S + 1).expand(B, T, S + 1).contiguous()
    logits = (am.unsqueeze(2) + lm.unsqueeze(1)).contiguous()
    px_p, py_p = G.get_rnnt_logprobs_pruned(logits, symbols, ranges, 0, boundary, rnnt_type)
    torch.testing.assert_close(px_p, px_ref)
    torch.testing.assert_close(py_p, py_ref)
    params = list(inspect.signature(G.get_rnnt_logprobs).parameters)
    assert params[4:6] == ["rnnt_type", "boundary"]


def test_int32_symbols_accepted(builtin_backend):
    """int32 symbols (k2 accepts them; torchaudio requires them) give the int64 results, and the
    full loss matches torchaudio's reference RNN-T loss."""
    torchaudio_f = pytest.importorskip("torchaudio.functional")
    g = torch.Generator().manual_seed(11)
    B, S, T, C = 2, 3, 6, 5
    am = torch.randn(B, T, C, generator=g)
    lm = torch.randn(B, S + 1, C, generator=g)
    sym64 = torch.randint(1, C, (B, S), generator=g)
    sym32 = sym64.int()
    boundary = torch.tensor([[0, 0, 3, 6], [0, 0, 2, 5]])
    logits = am.unsqueeze(2) + lm.unsqueeze(1)
    kw = dict(boundary=boundary, reduction="none")
    for fn, args in (
        (G.rnnt_loss, (logits,)),
        (G.rnnt_loss_simple, (lm, am)),
        (G.rnnt_loss_smoothed, (lm, am)),
    ):
        torch.testing.assert_close(fn(*args, sym32, 0, **kw), fn(*args, sym64, 0, **kw))
    ref = torchaudio_f.rnnt_loss(
        logits, sym32, boundary[:, 3].int(), boundary[:, 2].int(), blank=0, reduction="none"
    )
    torch.testing.assert_close(G.rnnt_loss(logits, sym32, 0, **kw), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="symbols"):
        G.rnnt_loss(logits, sym64.float(), 0, **kw)


def test_return_grad_where_k2_has_it(builtin_backend):
    """k2: rnnt_loss_simple / rnnt_loss_smoothed / mutual_information_recursion take
    return_grad, and the grads equal ``autograd.grad(-loss.sum(), [px, py])`` (reduction none)."""
    for fn in (G.rnnt_loss_simple, G.rnnt_loss_smoothed, G.mutual_information_recursion):
        assert "return_grad" in inspect.signature(fn).parameters, fn.__name__
    g = torch.Generator().manual_seed(13)
    B, S, T, C = 2, 3, 6, 5
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    boundary = torch.tensor([[0, 0, 3, 6], [0, 0, 2, 4]])
    px, py = G.get_rnnt_logprobs(lm, am, symbols, 0, "regular", boundary)
    px.requires_grad_()
    py.requires_grad_()
    loss, (gx, gy) = G.rnnt_loss_simple(
        lm, am, symbols, 0, boundary=boundary, reduction="none", return_grad=True
    )
    # -loss = the lattice score, so autograd of -loss.sum() is that of the scores' sum.
    ax, ay = torch.autograd.grad(G.mutual_information_recursion(px, py, boundary).sum(), [px, py])
    torch.testing.assert_close(gx, ax)
    torch.testing.assert_close(gy, ay)
    torch.testing.assert_close(loss, -naive_scores(px.detach(), py.detach(), boundary))
