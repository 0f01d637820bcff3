"""Independent references for the RNN-T tests: brute-force path enumeration and naive loops."""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor

NEG_INF = float("-inf")


def _lae(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def naive_scores(px: Tensor, py: Tensor, boundary: Tensor | None = None) -> Tensor:
    """Cell-by-cell recursion in python floats, (B,) float64 (the spec's formula verbatim)."""
    B, S, T1 = px.shape
    T = py.shape[2]
    modified = T1 == T
    out = []
    for b in range(B):
        s0, t0, s1, t1 = boundary[b].tolist() if boundary is not None else (0, 0, S, T)
        X = px[b].double().tolist()
        Y = py[b].double().tolist()
        p = [[NEG_INF] * (T + 1) for _ in range(S + 1)]
        for s in range(s0, s1 + 1):
            for t in range(t0, t1 + 1):
                if s == s0 and t == t0:
                    p[s][t] = 0.0
                    continue
                v = NEG_INF
                if s > s0:
                    if modified:
                        if t > t0:
                            v = p[s - 1][t - 1] + X[s - 1][t - 1]
                    else:
                        v = p[s - 1][t] + X[s - 1][t]
                if t > t0:
                    v = _lae(v, p[s][t - 1] + Y[s][t - 1])
                p[s][t] = v
        out.append(p[s1][t1])
    return torch.tensor(out, dtype=torch.float64)


def torch_loop_scores(px: Tensor, py: Tensor, boundary: Tensor) -> Tensor:
    """Same recursion with torch scalars: autograd gives d scores / d (px, py). Tiny sizes only."""
    B, S, T1 = px.shape
    T = py.shape[2]
    modified = T1 == T
    scores = []
    for b in range(B):
        s0, t0, s1, t1 = boundary[b].tolist()
        p = {}
        for s in range(s0, s1 + 1):
            for t in range(t0, t1 + 1):
                if s == s0 and t == t0:
                    p[s, t] = px.new_zeros(())
                    continue
                terms = []
                if s > s0 and (not modified or t > t0):
                    tt = t - 1 if modified else t
                    terms.append(p[s - 1, tt] + px[b, s - 1, tt])
                if t > t0:
                    terms.append(p[s, t - 1] + py[b, s, t - 1])
                terms = [x for x in terms if x.item() != NEG_INF]
                if not terms:  # unreachable (modified: more symbols than frames so far)
                    p[s, t] = px.new_full((), NEG_INF).detach()
                else:
                    p[s, t] = torch.logsumexp(torch.stack(terms), 0)
        scores.append(p[s1, t1])
    return torch.stack(scores)


def brute_force_scores(px: Tensor, py: Tensor, boundary: Tensor | None = None) -> Tensor:
    """log-sum over every monotone path from (s_begin, t_begin) to (s_end, t_end), (B,)."""
    B, S, T1 = px.shape
    T = py.shape[2]
    modified = T1 == T
    out = []
    for b in range(B):
        s0, t0, s1, t1 = boundary[b].tolist() if boundary is not None else (0, 0, S, T)
        ns, nt = s1 - s0, t1 - t0
        total = NEG_INF
        if modified:
            # nt frames, each either a symbol (s+1, t+1) or a blank (s, t+1); ns symbols.
            for pos in itertools.combinations(range(nt), ns):
                s, lp = s0, 0.0
                for i in range(nt):
                    t = t0 + i
                    if i in pos:
                        lp += float(px[b, s, t])
                        s += 1
                    else:
                        lp += float(py[b, s, t])
                total = _lae(total, lp)
        else:
            for pos in itertools.combinations(range(ns + nt), ns):
                s, t, lp = s0, t0, 0.0
                for i in range(ns + nt):
                    if i in pos:
                        lp += float(px[b, s, t])
                        s += 1
                    else:
                        lp += float(py[b, s, t])
                        t += 1
                total = _lae(total, lp)
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def brute_force_logits_loss(logits: Tensor, symbols: Tensor, blank: int, rnnt_type: str) -> Tensor:
    """-log P(symbols) by enumerating alignments over joint logits (B, T, S+1, C).

    regular: S symbols and T blanks, frames advance only on blank, the last move is a blank;
    modified: T moves, each a blank or one symbol (both advance the frame);
    constrained: modified, with a symbol's log-prob increased by the next state's blank log-prob.
    """
    logp = logits.double().log_softmax(-1)
    B, T, S1, _ = logits.shape
    S = S1 - 1
    out = []
    for b in range(B):
        total = NEG_INF
        if rnnt_type == "regular":
            for pos in itertools.combinations(range(S + T), S):
                if S and max(pos) == S + T - 1:
                    continue  # a symbol after the last frame's blank is not allowed
                s, t, lp = 0, 0, 0.0
                for i in range(S + T):
                    if i in pos:
                        lp += float(logp[b, t, s, symbols[b, s]])
                        s += 1
                    else:
                        lp += float(logp[b, t, s, blank])
                        t += 1
                total = _lae(total, lp)
        else:
            for pos in itertools.combinations(range(T), S):
                s, lp = 0, 0.0
                for t in range(T):
                    if t in pos:
                        lp += float(logp[b, t, s, symbols[b, s]])
                        if rnnt_type == "constrained":
                            lp += float(logp[b, t, s + 1, blank])
                        s += 1
                    else:
                        lp += float(logp[b, t, s, blank])
                total = _lae(total, lp)
        out.append(-total)
    return torch.tensor(out, dtype=torch.float64)
