"""Benchmark: GM-OT fused Gromov-Wasserstein (forward + backward) vs POT's batched solver.

Both sides get the same inputs and the same algorithm and iteration counts: proximal-point
(mirror-descent) FGW, ``outer x inner`` Sinkhorn sweeps with early stopping disabled
(POT: ``ot.batch.solve_gromov_batch(..., tol=0, tol_inner=0, grad="envelope")``; ours:
``fused_gromov_wasserstein(..., solver="ppa", tol=0, tol_inner=0)``). Timed region: cost
matrices from the features (1 - cos), the solver, and ``value.sum().backward()`` to the features.

Usage::

    python bench/bench_gmot.py --device cpu --repeat 3
    python bench/bench_gmot.py --device cuda --repeat 20 --scaling

Prints, per configuration: our time, POT's time (same run), the ratio POT/ours, the device and
the relative difference of the FGW values.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.ot import fused_gromov_wasserstein, gmot_costs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _costs(h: torch.Tensor, z: torch.Tensor):
    B, La, Lt = h.shape[0], h.shape[1], z.shape[1]
    h_lens = torch.full((B,), La, device=h.device)
    z_lens = torch.full((B,), Lt, device=z.device)
    return gmot_costs(h, h_lens, z, z_lens)  # same (shared) cost construction for both sides


OURS_OPTIONS: dict = {}


def run_ours(h, z, alpha, eps, outer, inner):
    M, C1, C2 = _costs(h, z)
    res = fused_gromov_wasserstein(
        M, C1, C2, alpha=alpha, epsilon=eps, solver="ppa", max_iter=outer, tol=0,
        max_iter_inner=inner, tol_inner=0, validate=False, **OURS_OPTIONS,
    )  # fmt: skip
    res.value.sum().backward()
    return res.value.detach()


def run_pot(h, z, alpha, eps, outer, inner):
    from ot.batch import solve_gromov_batch

    M, C1, C2 = _costs(h, z)
    res = solve_gromov_batch(
        C1, C2, reg=eps, M=M, alpha=alpha, max_iter=outer, tol=0, max_iter_inner=inner,
        tol_inner=0, symmetric=True, grad="envelope",
    )  # fmt: skip
    res.value.sum().backward()
    return res.value.detach()


def time_fn(fn, device, repeat, warmup, *args):
    for _ in range(warmup):
        fn(*args)
    _sync(device)
    times = []
    out = None
    for _ in range(repeat):
        for t in args[:2]:
            t.grad = None
        _sync(device)
        t0 = time.perf_counter()
        out = fn(*args)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def bench_one(B, La, Lt, D, outer, inner, args, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    dtype = getattr(torch, args.dtype)
    h = torch.randn(B, La, D, generator=g).to(device=device, dtype=dtype).requires_grad_(True)
    z = torch.randn(B, Lt, D, generator=g).to(device=device, dtype=dtype).requires_grad_(True)
    t_ours, v_ours = time_fn(run_ours, device, args.repeat, args.warmup, h, z, args.alpha,
                             args.epsilon, outer, inner)  # fmt: skip
    t_pot, v_pot = time_fn(run_pot, device, args.repeat, args.warmup, h, z, args.alpha,
                           args.epsilon, outer, inner)  # fmt: skip
    rel = float(((v_ours - v_pot).abs() / v_pot.abs().clamp_min(1e-12)).max())
    print(
        f"B={B} La={La} Lt={Lt} D={D} iters={outer}x{inner} device={device} dtype={args.dtype}: "
        f"ours {t_ours * 1e3:.1f} ms | POT {t_pot * 1e3:.1f} ms | POT/ours {t_pot / t_ours:.2f}x "
        f"| max rel value diff {rel:.2e}",
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--La", type=int, default=250)
    p.add_argument("--Lt", type=int, default=30)
    p.add_argument("--D", type=int, default=384)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--epsilon", type=float, default=0.1)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeat", type=int, default=5, help="timed runs (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--iters", default="10x20,30x50", help="comma list of OUTERxINNER")
    p.add_argument("--scaling", action="store_true", help="also La in (250, 500, 1000) at 10x20")
    p.add_argument("--compile", action="store_true", help="ours: torch.compile the inner sweeps")
    p.add_argument("--block", type=int, default=10, help="ours: Sinkhorn sweeps per block")
    p.add_argument("--inner-mode", default="hybrid", choices=["hybrid", "log"])
    p.add_argument(
        "--inner-kernel",
        default="auto",
        choices=["auto", "torch", "triton"],
        help="ours: Sinkhorn implementation (auto = fused Triton kernel on CUDA)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    OURS_OPTIONS.update(
        compile_inner=args.compile,
        check_every=args.block,
        inner_mode=args.inner_mode,
        inner_kernel=args.inner_kernel,
    )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device: {name}; torch {torch.__version__}; threads {torch.get_num_threads()}; "
        f"ours: {OURS_OPTIONS}"
    )
    for spec in args.iters.split(","):
        outer, inner = (int(x) for x in spec.lower().split("x"))
        bench_one(args.B, args.La, args.Lt, args.D, outer, inner, args, device)
    if args.scaling:
        for La in (250, 500, 1000):
            bench_one(args.B, La, args.Lt, args.D, 10, 20, args, device)


if __name__ == "__main__":
    main()
