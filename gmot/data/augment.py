"""Feature-domain augmentation of training batches that lhotse does not provide.

:class:`FrequencyWarp` stretches or compresses each utterance's log-mel spectrum along the
frequency axis by a random factor, in the spirit of vocal-tract-length perturbation (VTLP,
Jaitly & Hinton 2013): speakers differ by how far apart their formants lie, and a factor
0.9..1.1 moves every formant by up to 10 %. It works on precomputed features (no audio needed)
and costs one gather per batch.
"""

from __future__ import annotations

import torch

__all__ = ["FrequencyWarp", "warp_positions"]


def warp_positions(num_bins: int, alpha: torch.Tensor, boundary: float = 0.8) -> torch.Tensor:
    """Source positions of a piecewise-linear frequency warp, one row per factor.

    Output bin ``f`` takes its value from (fractional) input bin ``alpha * f`` up to a bend
    point, and from there on a straight line to the last bin, so that bins 0 and
    ``num_bins - 1`` stay fixed (no content leaves the spectrum, none is invented above it).
    The bend lies at ``boundary * (num_bins - 1) * min(1, 1 / alpha)``.

    Args:
      num_bins: F, the feature dimension.
      alpha: (B,) warp factors, > 0 (1 = identity; > 1 moves content to lower bins).
      boundary: where the bend lies, as a fraction of the top bin, in (0, 1).
    Returns:
      (B, F) float source positions in [0, F - 1], increasing along F.
    """
    assert alpha.dim() == 1 and bool((alpha > 0).all()), f"alpha must be (B,) > 0; got {alpha}"
    assert 0 < boundary < 1, f"boundary must be in (0, 1); got {boundary}"
    top = float(num_bins - 1)
    f = torch.arange(num_bins, dtype=torch.float32, device=alpha.device)[None]  # (1, F)
    a = alpha.float()[:, None]  # (B, 1)
    bend = boundary * top * torch.clamp(1 / a, max=1.0)  # (B, 1) output bin of the bend
    low = a * f
    # from (bend, a * bend) to (top, top) on a straight line
    high = a * bend + (f - bend) * (top - a * bend) / (top - bend)
    return torch.where(f <= bend, low, high).clamp(0, top)


class FrequencyWarp:
    """Random per-utterance frequency warping of (B, T, F) features (a training augmentation).

    Each utterance draws a factor uniformly from ``[1 - max_warp, 1 + max_warp]`` (with
    probability ``p``; otherwise 1) and every frame is resampled along F by linear interpolation
    at :func:`warp_positions`. Padding frames of a constant value stay constant. Randomness comes
    from torch's global generator (the dataset seeds it per batch).

    Args:
      max_warp: largest relative stretch, in [0, 0.5); 0 makes the transform the identity.
      p: probability that an utterance is warped.
    """

    def __init__(self, max_warp: float = 0.1, p: float = 1.0) -> None:
        if not 0 <= max_warp < 0.5:
            raise ValueError(f"--freq-warp must be in [0, 0.5); got {max_warp}")
        if not 0 <= p <= 1:
            raise ValueError(f"FrequencyWarp p must be in [0, 1]; got {p}")
        self.max_warp, self.p = max_warp, p

    def __repr__(self) -> str:
        return f"FrequencyWarp(max_warp={self.max_warp}, p={self.p})"

    def factors(self, batch_size: int) -> torch.Tensor:
        """(B,) factors for one batch (drawn from torch's global generator)."""
        alpha = 1 + (2 * torch.rand(batch_size) - 1) * self.max_warp
        keep = torch.rand(batch_size) >= self.p
        return torch.where(keep, torch.ones_like(alpha), alpha)

    def __call__(self, x: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, F) -> warped (B, T, F) (a new tensor); ``alpha`` (B,) overrides the draw."""
        assert x.dim() == 3, f"features must be (B, T, F); got {tuple(x.shape)}"
        B, T, F = x.shape
        if alpha is None:
            alpha = self.factors(B)
        assert alpha.shape == (B,), f"alpha must be ({B},); got {tuple(alpha.shape)}"
        pos = warp_positions(F, alpha.to(x.device))  # (B, F)
        lo = pos.floor().long().clamp(max=F - 2) if F > 1 else pos.long()
        w = (pos - lo.to(pos.dtype)).to(x.dtype)[:, None, :]  # (B, 1, F)
        idx = lo[:, None, :].expand(B, T, F)
        left = x.gather(2, idx)
        right = x.gather(2, (idx + 1).clamp(max=F - 1))
        return left + w * (right - left)
