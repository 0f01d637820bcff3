"""Scaling tools of the Zipformer: schedules, activations, BiasNorm and gradient-only regularisers.

Everything here is written from the Zipformer paper (arXiv 2310.11230):

* :class:`ScheduledFloat` -- a piecewise-linear float keyed on the training "batch count"
  (``set_batch_count`` moves every schedule of a model).
* :func:`swoosh_r`, :func:`swoosh_l` and their module forms.
* :class:`BiasNorm` -- ``x * exp(log_scale) / rms(x - bias)`` over the channel axis.
* :class:`Balancer` and :class:`Whiten` -- identity in the forward pass; in training mode they
  add a corrective term to the gradient only (zero effect in eval mode and on forward values).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "ScheduledFloat",
    "set_batch_count",
    "swoosh_r",
    "swoosh_l",
    "SwooshR",
    "SwooshL",
    "BiasNorm",
    "Balancer",
    "Whiten",
    "scaled_linear",
]


class ScheduledFloat:
    """A float that is a piecewise-linear function of the batch count.

    Args:
        *points: ``(batch_count, value)`` pairs with strictly increasing batch counts; before the
            first point the first value holds, after the last point the last value.
        default: value used when ``batch_count`` was never set (None: the first point's value).
    """

    def __init__(self, *points: tuple[float, float], default: float | None = None) -> None:
        if not points:
            raise ValueError("ScheduledFloat needs at least one (batch_count, value) point")
        xs = [float(p[0]) for p in points]
        if any(b <= a for a, b in zip(xs, xs[1:])):
            raise ValueError(f"ScheduledFloat points must have increasing batch counts, got {xs}")
        self.points = [(float(x), float(y)) for x, y in points]
        self.default = default
        self.batch_count: float | None = None

    def value(self, batch_count: float | None = None) -> float:
        """Value at ``batch_count`` (default: the last one set with :func:`set_batch_count`)."""
        bc = self.batch_count if batch_count is None else batch_count
        if bc is None:
            return self.points[0][1] if self.default is None else float(self.default)
        pts = self.points
        if bc <= pts[0][0]:
            return pts[0][1]
        if bc >= pts[-1][0]:
            return pts[-1][1]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if x0 <= bc <= x1:
                return y0 + (y1 - y0) * (bc - x0) / (x1 - x0)
        raise AssertionError("unreachable")

    def __float__(self) -> float:
        return self.value()

    def __repr__(self) -> str:
        return f"ScheduledFloat({self.points}, batch_count={self.batch_count})"


def set_batch_count(model: nn.Module, batch_count: float) -> None:
    """Set the schedule position of every :class:`ScheduledFloat` held by ``model``'s submodules.

    Args:
        model: any module; its submodules' attributes that are ScheduledFloats are updated.
        batch_count: normalised batch count (icefall convention:
            ``batch_idx * max_duration * world_size / 600``).
    """
    bc = float(batch_count)
    for module in model.modules():
        for value in vars(module).values():
            if isinstance(value, ScheduledFloat):
                value.batch_count = bc
        if hasattr(module, "batch_count") and not isinstance(module.batch_count, ScheduledFloat):
            module.batch_count = bc


def _float(x: float | ScheduledFloat) -> float:
    return float(x)


class _Swoosh(torch.autograd.Function):
    """``log(1 + exp(x - shift)) - 0.08 x - offset`` saving only x for backward (less memory)."""

    @staticmethod
    def forward(ctx, x: Tensor, shift: float, offset: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.shift = shift
        z = x - shift
        # softplus is linear above z = 20 (error < 3e-9) and much faster than logaddexp on CPU.
        # With x = z + shift the result is softplus(z) - 0.08 z - (offset + 0.08 shift); the
        # in-place updates make it three passes over memory and two allocations instead of
        # five and four (the activation is memory-bound: forward + backward 2x faster on CPU).
        out = torch.nn.functional.softplus(z)
        out.add_(z, alpha=-0.08)
        return out.sub_(offset + 0.08 * shift)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        d = torch.sigmoid(x - ctx.shift)
        return d.sub_(0.08).mul_(grad), None, None


def swoosh_r(x: Tensor) -> Tensor:
    """SwooshR(x) = log(1 + exp(x - 1)) - 0.08 x - 0.313261687 (zero at x = 0)."""
    return _Swoosh.apply(x, 1.0, 0.313261687)


def swoosh_l(x: Tensor) -> Tensor:
    """SwooshL(x) = log(1 + exp(x - 4)) - 0.08 x - 0.035."""
    return _Swoosh.apply(x, 4.0, 0.035)


class SwooshR(nn.Module):
    """Module form of :func:`swoosh_r`."""

    def forward(self, x: Tensor) -> Tensor:
        return swoosh_r(x)


class SwooshL(nn.Module):
    """Module form of :func:`swoosh_l`."""

    def forward(self, x: Tensor) -> Tensor:
        return swoosh_l(x)


class BiasNorm(nn.Module):
    """BiasNorm over the last axis: ``x * exp(log_scale) / rms(x - bias)``.

    Args:
        num_channels: size C of the last axis.
        log_scale_limit: ``log_scale`` is clamped to ``[-limit, limit]``.
    Shapes: input (..., C) -> output (..., C).
    """

    def __init__(self, num_channels: int, log_scale_limit: float = 1.5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.log_scale_limit = log_scale_limit
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.log_scale = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.num_channels:
            raise ValueError(f"BiasNorm expects {self.num_channels} channels, got {tuple(x.shape)}")
        scale = self.log_scale.clamp(-self.log_scale_limit, self.log_scale_limit).exp()
        inv_rms = ((x - self.bias) ** 2).mean(dim=-1, keepdim=True).clamp_min(1e-20).rsqrt()
        return x * inv_rms * scale


def scaled_linear(in_dim: int, out_dim: int, bias: bool = True, scale: float = 1.0) -> nn.Linear:
    """An ``nn.Linear`` whose default initialisation is multiplied by ``scale`` (bias zeroed)."""
    lin = nn.Linear(in_dim, out_dim, bias=bias)
    with torch.no_grad():
        lin.weight.mul_(scale)
        if bias:
            lin.bias.zero_()
    return lin


def _channel_view(x: Tensor, channel_dim: int) -> Tensor:
    """(..., C, ...) -> (N, C) with the channel axis last."""
    return x.movedim(channel_dim, -1).reshape(-1, x.shape[channel_dim])


class _GradientPenalty(torch.autograd.Function):
    """Identity forward; backward adds ``scale * |grad| * d(penalty)/dx`` normalised per tensor."""

    @staticmethod
    def forward(ctx, x: Tensor, module: nn.Module) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.module = module
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xd = x.detach().float().requires_grad_(True)
            penalty = ctx.module._penalty(xd)
        if penalty is None or not penalty.requires_grad:
            return grad, None
        (pgrad,) = torch.autograd.grad(penalty, xd)
        pnorm = pgrad.norm()
        if not torch.isfinite(pnorm) or pnorm == 0:
            return grad, None
        gscale = ctx.module.grad_scale_value() * grad.float().norm() / pnorm
        return grad + (pgrad * gscale).to(grad.dtype), None


class Balancer(nn.Module):
    """Keeps per-channel positive fraction and mean |x| in range by adjusting gradients only.

    In training mode (and with probability ``prob`` per call) the backward pass adds a term
    proportional to the gradient of a hinge penalty on channels whose proportion of positive
    values lies outside ``[min_positive, max_positive]`` or whose mean absolute value lies
    outside ``[min_abs, max_abs]``; the added term has norm ``grad_scale * ||grad||``.
    The forward pass is the identity, and in eval mode the module does nothing at all.

    Args:
        num_channels: size of ``channel_dim``.
        channel_dim: channel axis (negative allowed).
    """

    def __init__(
        self,
        num_channels: int,
        channel_dim: int = -1,
        min_positive: float | ScheduledFloat = 0.05,
        max_positive: float | ScheduledFloat = 0.95,
        min_abs: float | ScheduledFloat = 0.2,
        max_abs: float | ScheduledFloat = 100.0,
        grad_scale: float | ScheduledFloat = 0.04,
        prob: float | ScheduledFloat = 0.25,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.channel_dim = channel_dim
        self.min_positive, self.max_positive = min_positive, max_positive
        self.min_abs, self.max_abs = min_abs, max_abs
        self.grad_scale, self.prob = grad_scale, prob

    def grad_scale_value(self) -> float:
        return _float(self.grad_scale)

    def _penalty(self, x: Tensor) -> Tensor:
        xc = _channel_view(x, self.channel_dim)
        # Smooth positive fraction and mean-abs per channel (C,).
        temp = xc.detach().abs().mean().clamp_min(1e-4) * 0.1
        pos = torch.sigmoid(xc / temp).mean(dim=0)
        mabs = xc.abs().mean(dim=0).clamp_min(1e-10)
        lo_p, hi_p = _float(self.min_positive), _float(self.max_positive)
        lo_a, hi_a = _float(self.min_abs), _float(self.max_abs)
        pen = torch.relu(lo_p - pos) + torch.relu(pos - hi_p)
        log_abs = mabs.log()
        pen = pen + torch.relu(math.log(lo_a) - log_abs) + torch.relu(log_abs - math.log(hi_a))
        return pen.sum()

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[self.channel_dim] != self.num_channels:
            raise ValueError(
                f"Balancer expects {self.num_channels} channels on dim {self.channel_dim}, "
                f"got shape {tuple(x.shape)}"
            )
        if not self.training or not x.requires_grad or torch.jit.is_scripting():
            return x
        if float(torch.rand(())) >= _float(self.prob):
            return x
        return _GradientPenalty.apply(x, self)


class Whiten(nn.Module):
    """Pushes the feature covariance toward a multiple of the identity, via gradients only.

    The whiteness metric of the (N, C) features split into ``num_groups`` groups is
    ``d * trace(S @ S) / trace(S) ** 2`` per group (S the group's covariance, d its size); it is 1
    for white features and ``d`` for rank one. When the metric exceeds ``whitening_limit`` in
    training mode (with probability ``prob``) the backward pass adds its gradient, scaled to norm
    ``grad_scale * ||grad||``. Identity forward; nothing in eval mode.
    """

    def __init__(
        self,
        num_groups: int = 1,
        whitening_limit: float | ScheduledFloat = 5.0,
        prob: float | ScheduledFloat = 0.25,
        grad_scale: float | ScheduledFloat = 0.01,
        channel_dim: int = -1,
    ) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.whitening_limit = whitening_limit
        self.prob = prob
        self.grad_scale = grad_scale
        self.channel_dim = channel_dim

    def grad_scale_value(self) -> float:
        return _float(self.grad_scale)

    def metric(self, x: Tensor) -> Tensor:
        """Whiteness metric (mean over groups) of ``x`` along ``channel_dim``; scalar tensor."""
        xc = _channel_view(x, self.channel_dim).float()
        n, c = xc.shape
        if c % self.num_groups != 0:
            raise ValueError(f"Whiten: {c} channels not divisible by {self.num_groups} groups")
        d = c // self.num_groups
        xg = xc.reshape(n, self.num_groups, d).transpose(0, 1)  # (G, N, d)
        xg = xg - xg.mean(dim=1, keepdim=True)
        cov = xg.transpose(1, 2) @ xg / max(n, 1)  # (G, d, d)
        tr = cov.diagonal(dim1=1, dim2=2).sum(-1)
        tr2 = (cov**2).sum(dim=(1, 2))
        return (d * tr2 / tr.clamp_min(1e-20) ** 2).mean()

    def _penalty(self, x: Tensor) -> Tensor | None:
        m = self.metric(x)
        limit = _float(self.whitening_limit)
        return torch.relu(m - limit) if float(m.detach()) > limit else None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not x.requires_grad or torch.jit.is_scripting():
            return x
        if float(torch.rand(())) >= _float(self.prob):
            return x
        return _GradientPenalty.apply(x, self)
