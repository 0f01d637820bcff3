"""ScaledAdam optimiser (Zipformer paper, Sec. 4), written from its description.

For every non-scalar parameter tensor ``p`` with gradient ``g`` at step t (1-based):

* clipping: ``N_t = sqrt(sum_p (||g_p|| * r_p)^2)`` with ``r_p = max(rms(p), param_min_rms)``;
  if ``N_t > clipping_scale * median(N over the last `clipping_window` steps, N_t included)``,
  every gradient is multiplied by ``threshold / N_t`` (so the first step is never clipped);
  a non-finite ``N_t`` skips the whole step (counted in ``skipped_steps``);
* ``v = beta2 v + (1 - beta2) g^2``; ``u = g / (sqrt(v / (1 - beta2^t)) + eps)``;
* ``m = beta1 m + (1 - beta1) u``; ``p <- p - lr * r_p * m`` (update scaled by the tensor's RMS);
* scale learning: ``s_t = sum(p * g)`` (the gradient w.r.t. log of p's overall scale) is stored;
  every ``size_update_period`` steps, with ``sbar`` the window mean and
  ``w = beta2 w + (1 - beta2) mean(s^2)`` over the window (k-th such update),
  ``delta = -lr * scale_speed * sbar / (sqrt(w / (1 - beta2^k)) + eps)``, set to 0 if it would
  grow a tensor whose RMS is already >= ``param_max_rms`` (3.0) or shrink one whose RMS is
  <= ``param_min_rms``; then ``p <- p * exp(delta)``.

Scalars (numel == 1) use plain Adam with ``lr * scalar_lr_scale`` (0.1) and the same momentum,
then are clamped to ``[-scalar_max, scalar_max]`` (10). There is no weight decay.
Parameters of the same shape, dtype, device and step count within a group are processed as one
stacked batch; the state is kept per parameter, so parameters that get no gradient in some
steps (unused heads) are simply skipped.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

__all__ = ["ScaledAdam"]


def _normalise_params(params: Any) -> list[dict]:
    """Accept tensors, (name, tensor) pairs or param-group dicts; return groups with names."""
    params = list(params)
    if not params:
        raise ValueError("ScaledAdam got an empty parameter list")
    if isinstance(params[0], dict):
        groups = []
        for g in params:
            g = dict(g)
            g.update(_normalise_params(g["params"])[0])
            groups.append(g)
        return groups
    names, tensors = [], []
    for i, p in enumerate(params):
        if isinstance(p, tuple):
            names.append(p[0])
            tensors.append(p[1])
        else:
            names.append(f"param{i}")
            tensors.append(p)
    return [{"params": tensors, "param_names": names}]


class ScaledAdam(torch.optim.Optimizer):
    """ScaledAdam. See the module docstring for the exact update.

    Args:
        params: tensors, ``model.named_parameters()`` pairs, or param groups (dicts).
        lr: learning rate (icefall's default base lr 0.045; usually driven by :class:`Eden`).
        betas: (beta1, beta2) = (0.9, 0.98).
        clipping_scale: clip at this multiple of the median recent total gradient norm
            (None disables clipping).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.045,
        betas: tuple[float, float] = (0.9, 0.98),
        eps: float = 1e-8,
        clipping_scale: float | None = 2.0,
        clipping_window: int = 128,
        scalar_lr_scale: float = 0.1,
        scalar_max: float = 10.0,
        param_min_rms: float = 1e-5,
        param_max_rms: float = 3.0,
        scale_speed: float = 0.1,
        size_update_period: int = 4,
    ) -> None:
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas}")
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            scalar_lr_scale=scalar_lr_scale,
            scalar_max=scalar_max,
            param_min_rms=param_min_rms,
            param_max_rms=param_max_rms,
            scale_speed=scale_speed,
            size_update_period=size_update_period,
        )
        super().__init__(_normalise_params(params), defaults)
        self.clipping_scale = clipping_scale
        self.clipping_window = clipping_window
        self.recent_norms: deque[float] = deque(maxlen=clipping_window)
        self.last_clip_factor = 1.0
        self.skipped_steps = 0

    def state_dict(self) -> dict:  # type: ignore[override]
        """Optimizer state plus the recent gradient norms used for clipping."""
        sd = super().state_dict()
        sd["recent_norms"] = list(self.recent_norms)
        return sd

    def load_state_dict(self, state_dict: dict) -> None:  # type: ignore[override]
        state_dict = copy.deepcopy(state_dict)  # never alias another optimiser's tensors
        norms = state_dict.pop("recent_norms", [])
        super().load_state_dict(state_dict)
        self.recent_norms = deque(norms, maxlen=self.clipping_window)

    def _buckets(self, group: dict) -> list[list[Tensor]]:
        buckets: dict[tuple, list[Tensor]] = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("ScaledAdam does not support sparse gradients")
            step = self.state[p].get("step", 0) if p in self.state else 0
            buckets.setdefault((tuple(p.shape), p.dtype, p.device, step), []).append(p)
        return list(buckets.values())

    def _clip_factor(self) -> float:
        if self.clipping_scale is None:
            return 1.0
        self._norm_device = self.param_groups[0]["params"][0].device
        terms = []  # one device sync per step, not one per tensor
        for group in self.param_groups:
            floor = group["param_min_rms"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.detach().float()
                rms = p.detach().float().pow(2).mean().sqrt().clamp_min(floor)
                terms.append((g.pow(2).sum() * rms * rms).to(self._norm_device))
        if not terms:
            return 1.0
        sq = float(torch.stack(terms).sum())
        norm = math.sqrt(sq)
        if not math.isfinite(norm):
            return 0.0  # the caller skips the whole step
        self.recent_norms.append(norm)
        median = float(torch.tensor(list(self.recent_norms)).median())
        threshold = self.clipping_scale * median
        return threshold / norm if norm > threshold else 1.0

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        """One optimisation step; returns the closure's loss if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        clip = self._clip_factor()
        self.last_clip_factor = clip
        if clip == 0.0:  # non-finite gradient norm: leave parameters and state untouched
            self.skipped_steps += 1
            return loss
        for group in self.param_groups:
            for bucket in self._buckets(group):
                self._step_bucket(group, bucket, clip)
        return loss

    def _step_bucket(self, group: dict, bucket: list[Tensor], clip: float) -> None:
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        eps = group["eps"]
        period = group["size_update_period"]
        scalar = bucket[0].numel() == 1
        dtype = torch.promote_types(bucket[0].dtype, torch.float32)  # fp16/bf16 -> fp32 math
        p = torch.stack([q.detach() for q in bucket]).to(dtype)  # (K, *shape)
        g = torch.stack([q.grad.detach() for q in bucket]).to(dtype) * clip
        states = [self.state[q] for q in bucket]
        for st, q in zip(states, bucket):
            if "step" not in st:
                st["step"] = 0
                st["exp_avg_sq"] = torch.zeros_like(q, dtype=dtype)
                st["momentum"] = torch.zeros_like(q, dtype=dtype)
                if not scalar:
                    st["scale_grads"] = torch.zeros(period, device=q.device, dtype=dtype)
                    st["scale_exp_avg_sq"] = torch.zeros((), device=q.device, dtype=dtype)
                    st["scale_step"] = 0
            st["step"] += 1
        t = states[0]["step"]  # buckets group tensors with equal step counts
        v = torch.stack([st["exp_avg_sq"] for st in states]).mul_(beta2)
        v.addcmul_(g, g, value=1 - beta2)
        u = g / ((v / (1 - beta2**t)).sqrt() + eps)
        m = torch.stack([st["momentum"] for st in states]).mul_(beta1).add_(u, alpha=1 - beta1)
        if scalar:
            new = (p - lr * group["scalar_lr_scale"] * m).clamp(
                -group["scalar_max"], group["scalar_max"]
            )
        else:
            dims = tuple(range(1, p.dim()))
            rms = p.pow(2).mean(dim=dims).sqrt()  # (K,)
            view = (-1,) + (1,) * (p.dim() - 1)
            new = p - lr * rms.clamp_min(group["param_min_rms"]).view(view) * m
            sg = torch.stack([st["scale_grads"] for st in states])  # (K, period)
            sg[:, (t - 1) % period] = (p * g).sum(dim=dims)
            w = torch.stack([st["scale_exp_avg_sq"] for st in states])
            if t % period == 0:
                n_scale = states[0]["scale_step"] + 1
                w = w.mul(beta2).add_((sg**2).mean(dim=1), alpha=1 - beta2)
                denom = (w / (1 - beta2**n_scale)).sqrt() + eps
                delta = -lr * group["scale_speed"] * sg.mean(dim=1) / denom
                too_big = (rms >= group["param_max_rms"]) & (delta > 0)
                too_small = (rms <= group["param_min_rms"]) & (delta < 0)
                delta = delta.masked_fill(too_big | too_small, 0.0)
                new = new * delta.exp().view(view)
            for i, st in enumerate(states):
                st["scale_grads"] = sg[i]
                st["scale_exp_avg_sq"] = w[i]
                if t % period == 0:
                    st["scale_step"] += 1
        for i, (st, q) in enumerate(zip(states, bucket)):
            st["exp_avg_sq"] = v[i]
            st["momentum"] = m[i]
            q.copy_(new[i].to(q.dtype))
