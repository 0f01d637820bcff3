"""Relative-position attention pieces of the Zipformer block.

* :class:`CompactRelPositionalEncoding` -- parameter-free sinusoidal features of log-compressed
  relative offsets ``j - i`` (dimension ``pos_dim``, 48 in the published configs).
* :class:`RelPositionAttentionWeights` -- computes the multi-head attention weights once per
  block from content (query/key head dim 32) and relative position (pos head dim 4) scores.
* :class:`SelfAttention` -- applies given weights to per-head values (value head dim 12).
* :class:`NonlinAttention` -- the non-linear attention module using the first head's weights.

Tensors are batch first: x (B, T, C); attention weights (B, H, T, T) with rows = queries.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gmot.models.zipformer.scaling import Balancer, Whiten, scaled_linear

__all__ = [
    "CompactRelPositionalEncoding",
    "RelPositionAttentionWeights",
    "SelfAttention",
    "NonlinAttention",
]


class CompactRelPositionalEncoding(nn.Module):
    """Sinusoidal features of compressed relative offsets.

    Offsets r = j - i in ``[-(T-1), T-1]`` are compressed to ``sign(r) * log(1 + |r| / s)`` (s =
    ``length_scale``), so that distant offsets share resolution, then encoded as ``pos_dim / 2``
    cos/sin pairs with geometrically spaced frequencies.

    Returns (2T - 1, pos_dim); row ``r + T - 1`` encodes offset r. With ``key_len`` (streaming:
    T queries against ``key_len`` keys whose last T are the queries' own frames) the offsets run
    from ``-(key_len - 1)`` to ``T - 1``: (key_len + T - 1, pos_dim), row ``r + key_len - 1``.
    """

    def __init__(self, pos_dim: int, length_scale: float = 1.0, max_freq: float = 4.0) -> None:
        super().__init__()
        if pos_dim % 2:
            raise ValueError(f"pos_dim must be even, got {pos_dim}")
        self.pos_dim = pos_dim
        self.length_scale = length_scale
        half = pos_dim // 2
        freqs = max_freq * torch.exp(-math.log(100.0) * torch.arange(half) / max(half - 1, 1))
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(
        self, seq_len: int, device: torch.device, dtype: torch.dtype, key_len: int | None = None
    ) -> Tensor:
        key_len = seq_len if key_len is None else key_len
        r = torch.arange(-(key_len - 1), seq_len, device=device, dtype=torch.float32)
        c = torch.sign(r) * torch.log1p(r.abs() / self.length_scale)
        ang = c[:, None] * self.freqs.to(device)[None, :]
        return torch.cat([ang.cos(), ang.sin()], dim=-1).to(dtype)


def _rel_to_abs(scores: Tensor, key_len: int | None = None) -> Tensor:
    """(B, H, Tq, Tk+Tq-1) scores indexed by offset -> (B, H, Tq, Tk) indexed by key position.

    Key j sits at position ``j - (Tk - Tq)`` relative to the first query (Tk = Tq by default), so
    the offset row of (query i, key j) is ``j - i + Tq - 1``.
    """
    b, h, t, _ = scores.shape
    tk = t if key_len is None else key_len
    iq = torch.arange(t, device=scores.device)
    ik = torch.arange(tk, device=scores.device)
    offs = ik[None, :] - iq[:, None] + (t - 1)  # (T_query, T_key)
    return scores.gather(3, offs.expand(b, h, t, tk))


def _masked_softmax(scores: Tensor, mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Softmax over keys with ``mask`` (broadcast to scores, True = masked) set to weight 0.

    Rows with every key masked (padded queries of a chunk past the end) get all-zero weights
    instead of NaN, so they cannot leak NaN into later layers.
    """
    scores = scores.masked_fill(mask, float("-inf"))
    weights = scores.float().softmax(dim=-1)
    return weights.masked_fill(mask.all(dim=-1, keepdim=True), 0.0).to(dtype)


class RelPositionAttentionWeights(nn.Module):
    """Multi-head attention weights with relative positional scores, computed once per block.

    Args:
        embed_dim: C.
        pos_dim: dimension of the positional features.
        num_heads: H.
        query_head_dim: query/key dimension per head.
        pos_head_dim: positional query dimension per head.
        dropout: dropout on the weights (training only).
    """

    def __init__(
        self,
        embed_dim: int,
        pos_dim: int,
        num_heads: int,
        query_head_dim: int,
        pos_head_dim: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query_head_dim = query_head_dim
        self.pos_head_dim = pos_head_dim
        in_dim = (2 * query_head_dim + pos_head_dim) * num_heads
        self.in_proj = scaled_linear(embed_dim, in_dim, scale=query_head_dim**-0.25)
        self.linear_pos = scaled_linear(pos_dim, num_heads * pos_head_dim, bias=False, scale=0.05)
        self.whiten_keys = Whiten(num_groups=num_heads, whitening_limit=2.0, grad_scale=0.025)
        self.balance_keys = Balancer(num_heads * query_head_dim, min_positive=0.4, max_positive=0.6)
        self.dropout = nn.Dropout(dropout)

    def _scores(self, x: Tensor, pos_emb: Tensor, cached_key: Tensor | None) -> tuple:
        """Scores (B, H, T, K) of x's T frames against K = L + T keys; the keys (B, K, H * qd)."""
        b, t, _ = x.shape
        h, qd, pd = self.num_heads, self.query_head_dim, self.pos_head_dim
        proj = self.in_proj(x)
        q = proj[..., : h * qd]
        keys = self.whiten_keys(self.balance_keys(proj[..., h * qd : 2 * h * qd]))
        if cached_key is not None:
            keys = torch.cat([cached_key, keys], dim=1)
        tk = keys.shape[1]
        p = proj[..., 2 * h * qd :]
        q = q.reshape(b, t, h, qd).transpose(1, 2)  # (B, H, T, qd)
        k = keys.reshape(b, tk, h, qd).permute(0, 2, 3, 1)  # (B, H, qd, K)
        p = p.reshape(b, t, h, pd).transpose(1, 2)  # (B, H, T, pd)
        scores = torch.matmul(q, k)  # (B, H, T, K)
        pos = self.linear_pos(pos_emb).reshape(-1, h, pd).permute(1, 2, 0)  # (H, pd, K+T-1)
        pos_scores = torch.matmul(p, pos.unsqueeze(0))  # (B, H, T, K+T-1)
        scores = scores + _rel_to_abs(pos_scores, None if cached_key is None else tk)
        return scores, keys

    def forward(
        self,
        x: Tensor,
        pos_emb: Tensor,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, C); pos_emb (2T-1, pos_dim); key_padding_mask (B, T) True = padded;
        attn_mask (T, T) True = query (row) may not see key (column), e.g. a chunk mask.

        Returns weights (B, H, T, T); padded and masked keys get weight 0.
        """
        b, t, _ = x.shape
        scores, _ = self._scores(x, pos_emb, None)
        if key_padding_mask is not None and key_padding_mask.shape != (b, t):
            raise ValueError(
                f"key_padding_mask must be {(b, t)}, got {tuple(key_padding_mask.shape)}"
            )
        if attn_mask is not None:
            mask = attn_mask[None, None]
            if key_padding_mask is not None:
                mask = mask | key_padding_mask[:, None, None, :]
            return self.dropout(_masked_softmax(scores, mask, x.dtype))
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        weights = scores.float().softmax(dim=-1).to(x.dtype)
        return self.dropout(weights)

    def streaming_forward(
        self, x: Tensor, pos_emb: Tensor, key_mask: Tensor, cached_key: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One chunk: x (B, T, C) against the L cached keys plus its own T frames.

        Args:
            pos_emb: (L + 2T - 1, pos_dim) from ``CompactRelPositionalEncoding(T, key_len=L+T)``.
            key_mask: (B, L + T) True = key not visible (before the start, or padding).
            cached_key: (B, L, H * query_head_dim) keys of the previous L frames.
        Returns:
            weights (B, H, T, L + T) and the new cache (B, L, H * query_head_dim).
        """
        scores, keys = self._scores(x, pos_emb, cached_key)
        weights = _masked_softmax(scores, key_mask[:, None, None, :], x.dtype)
        return weights, keys[:, keys.shape[1] - cached_key.shape[1] :]


class SelfAttention(nn.Module):
    """Applies precomputed attention weights (B, H, T, T) to values of ``x`` (B, T, C)."""

    def __init__(self, embed_dim: int, num_heads: int, value_head_dim: int) -> None:
        super().__init__()
        self.num_heads, self.value_head_dim = num_heads, value_head_dim
        self.in_proj = nn.Linear(embed_dim, num_heads * value_head_dim)
        self.out_proj = scaled_linear(num_heads * value_head_dim, embed_dim, scale=0.05)
        self.whiten = Whiten(whitening_limit=10.0, grad_scale=0.01)

    def forward(self, x: Tensor, attn_weights: Tensor) -> Tensor:
        b, t, _ = x.shape
        h, vd = self.num_heads, self.value_head_dim
        if attn_weights.shape != (b, h, t, t):
            raise ValueError(
                f"attn_weights must be {(b, h, t, t)}, got {tuple(attn_weights.shape)}"
            )
        v = self.in_proj(x).reshape(b, t, h, vd).transpose(1, 2)  # (B, H, T, vd)
        out = torch.matmul(attn_weights, v).transpose(1, 2).reshape(b, t, h * vd)
        return self.whiten(self.out_proj(out))

    def streaming_forward(
        self, x: Tensor, attn_weights: Tensor, cached_val: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x (B, T, C); weights (B, H, T, L + T); cached_val (B, L, H * value_head_dim).

        Returns (B, T, C) and the new cache (B, L, H * value_head_dim).
        """
        b, t, _ = x.shape
        h, vd = self.num_heads, self.value_head_dim
        vals = torch.cat([cached_val, self.in_proj(x)], dim=1)
        v = vals.reshape(b, vals.shape[1], h, vd).transpose(1, 2)  # (B, H, L + T, vd)
        out = torch.matmul(attn_weights, v).transpose(1, 2).reshape(b, t, h * vd)
        return self.whiten(self.out_proj(out)), vals[:, t:]


class NonlinAttention(nn.Module):
    """Non-linear attention: ``out_proj(y * (A_0 @ (x * tanh(s))))`` with A_0 the first head."""

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.in_proj = nn.Linear(embed_dim, 3 * hidden_dim)
        self.balancer = Balancer(hidden_dim, min_positive=0.05, max_positive=0.95, min_abs=0.05)
        self.out_proj = scaled_linear(hidden_dim, embed_dim, scale=0.05)
        self.whiten = Whiten(whitening_limit=5.0, grad_scale=0.01)

    def forward(self, x: Tensor, attn_weights: Tensor) -> Tensor:
        """x (B, T, C); attn_weights (B, H, T, T). Returns (B, T, C)."""
        s, v, y = self.in_proj(x).chunk(3, dim=-1)
        s = torch.tanh(self.balancer(s))
        v = torch.matmul(attn_weights[:, 0], v * s)
        return self.whiten(self.out_proj(v * y))

    def streaming_forward(
        self, x: Tensor, attn_weights: Tensor, cached: Tensor
    ) -> tuple[Tensor, Tensor]:
        """x (B, T, C); weights (B, H, T, L + T); cached (B, L, hidden) gated values.

        Returns (B, T, C) and the new cache (B, L, hidden).
        """
        s, v, y = self.in_proj(x).chunk(3, dim=-1)
        s = torch.tanh(self.balancer(s))
        vals = torch.cat([cached, v * s], dim=1)
        v = torch.matmul(attn_weights[:, 0], vals)
        return self.whiten(self.out_proj(v * y)), vals[:, x.shape[1] :]
