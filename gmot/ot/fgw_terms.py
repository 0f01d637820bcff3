"""Closed forms of the terms of the FGW objective at a plan (used by :mod:`gmot.ot.fgw`).

The square-loss tensor product is never formed in 4-D (Peyre, Cuturi, Solomon 2016)::

    grad GW(T) = 2 (C1^2 a 1^T + 1 (C2^2 b)^T) - 4 C1 T C2^T            (C1, C2 symmetric)
    GW(T)      = p^T C1^2 p + q^T C2^2 q - 2 <C1 T C2^T, T>,   p = T 1, q = T^T 1

which costs ``O(n^2 m + n m^2)`` per product. All tensors are batched: ``C1`` ``(B, n, n)``,
``C2`` ``(B, m, m)``, plans ``T`` ``(B, n, m)``.
"""

from __future__ import annotations

import torch

__all__ = ["asymmetric", "entropic_term", "gw_const", "gw_gradient", "gw_value"]


def asymmetric(C: torch.Tensor) -> torch.Tensor:
    """``(B,)`` True where ``C`` fails POT's symmetry test ``allclose(C, C^T, 1e-5, 1e-10)``."""
    Ct = C.transpose(1, 2)
    return ((C - Ct).abs() > 1e-10 + 1e-5 * Ct.abs()).flatten(1).any(1)


def entropic_term(
    T: torch.Tensor,
    valid: torch.Tensor,
    epsilon: float,
    log_prior: torch.Tensor | None = None,
    balanced: bool = True,
) -> torch.Tensor:
    """``epsilon * sum_valid T log(T / P)`` ``(B,)``; ``- epsilon * sum T`` too when unbalanced.

    ``T`` ``(B, n, m)`` plan, ``valid`` ``(B, n, m)`` bool (non-padded entries), ``log_prior``
    ``(B, n, m)`` ``log P`` (None: ``P = 1``). Balanced: POT's ``reg * sum T log T`` convention.
    """
    ent = torch.xlogy(T, T)
    if log_prior is not None:
        ent = ent - T * log_prior
    if not balanced:
        ent = ent - T
    return epsilon * torch.where(valid, ent, 0.0).sum((1, 2))


def gw_gradient(
    C1: torch.Tensor,
    C2: torch.Tensor,
    T: torch.Tensor,
    const: torch.Tensor,
    symmetric: bool = True,
) -> torch.Tensor:
    """Gradient of the square-loss GW objective w.r.t. the plan, ``(B, n, m)``.

    ``const`` is ``(C1^2 a)[:, :, None] + (C2^2 b)[:, None, :]`` (symmetric case) or the sum of
    that and its transposed-C counterpart (non-symmetric case), see :func:`gw_const`.
    """
    prod = torch.bmm(torch.bmm(C1, T), C2.transpose(1, 2))
    if symmetric:
        return 2.0 * const - 4.0 * prod
    prod_t = torch.bmm(torch.bmm(C1.transpose(1, 2), T), C2)
    return const - 2.0 * (prod + prod_t)


def gw_const(
    C1: torch.Tensor, C2: torch.Tensor, a: torch.Tensor, b: torch.Tensor, symmetric: bool
) -> torch.Tensor:
    """The plan-independent part of :func:`gw_gradient` for marginals ``a`` ``(B, n)``, ``b``
    ``(B, m)``: ``(C1^2 a)[:, :, None] + (C2^2 b)[:, None, :]``, plus the same with ``C1^T``,
    ``C2^T`` when not ``symmetric``; ``(B, n, m)``."""
    C1s, C2s = C1 * C1, C2 * C2
    c = torch.bmm(C1s, a[:, :, None]) + torch.bmm(C2s, b[:, :, None]).transpose(1, 2)
    if symmetric:
        return c
    ct = torch.bmm(C1s.transpose(1, 2), a[:, :, None]) + torch.bmm(
        C2s.transpose(1, 2), b[:, :, None]
    ).transpose(1, 2)
    return c + ct


def gw_value(C1: torch.Tensor, C2: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Exact square-loss GW objective ``sum (C1[i,i'] - C2[k,k'])^2 T[i,k] T[i',k']``, ``(B,)``.

    Uses the plan's own marginals, so it is exact also for a plan that does not satisfy the
    marginal constraints to machine precision; valid for non-symmetric ``C1``, ``C2``.
    """
    p = T.sum(2)
    q = T.sum(1)
    t1 = (torch.bmm(C1 * C1, p[:, :, None]).squeeze(2) * p).sum(1)
    t2 = (torch.bmm(C2 * C2, q[:, :, None]).squeeze(2) * q).sum(1)
    cross = (torch.bmm(torch.bmm(C1, T), C2.transpose(1, 2)) * T).sum((1, 2))
    return t1 + t2 - 2.0 * cross
