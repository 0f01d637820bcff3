"""Benchmark: pruned RNN-T (gmot.transducer) vs torchaudio's full rnnt_loss, fwd + bwd.

Cases (same inputs, same run):

- ``pruned``: smoothed simple loss (lm_only_scale=0.25, return_grad) + prune ranges + pruning
  of the projected joiner inputs + joiner on the pruned lattice (B, T, R, J) -> (B, T, R, C) +
  pruned loss, then ``(0.5 * simple + pruned).backward()`` to the encoder/decoder outputs;
- ``torchaudio joiner+loss``: joiner on the full lattice (B, T, S+1, C) + torchaudio.functional
  .rnnt_loss, backward to the encoder/decoder outputs;
- ``torchaudio loss``: torchaudio rnnt_loss on given full logits (leaf), fwd + bwd;
- ``recursion``: mutual_information_recursion on random px/py, fwd + bwd, vs a naive torch loop
  over anti-diagonals with autograd.

"ours" is always the builtin backend. k2 and fast_rnnt (k2's RNN-T kernels packaged alone), when
importable (and built with CUDA for ``--device cuda``), run the same pruned pipeline and the
same recursion as a reference in the same run, with the ratio printed (``--reference-backends``).

Time: median over ``--repeat`` runs. Memory: on CUDA ``torch.cuda.max_memory_allocated`` above
the inputs; on CPU the process peak RSS increase (VmHWM after resetting it, approximate).

Usage::

    python bench/bench_rnnt.py --device cpu --B 4 --repeat 3
    python bench/bench_rnnt.py --device cuda --repeat 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.transducer import (
    Joiner,
    backend_available,
    backend_runs_on,
    do_rnnt_pruning,
    get_rnnt_prune_ranges,
    mutual_information_recursion,
    rnnt_loss_pruned,
    rnnt_loss_smoothed,
    set_rnnt_backend,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_reset() -> int:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _status_kb("VmRSS")


def _status_kb(key: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(fn: Callable[[], None], device: torch.device, repeat: int, warmup: int):
    """(median seconds, peak bytes above the start) of fn()."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        _sync(device)
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        base_kb = _rss_reset()
        fn()
        peak = max(0, _status_kb("VmHWM") - base_kb) * 1024
    return statistics.median(times), peak


def make_inputs(B, T, S, C, E, Dd, device, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    enc = torch.randn(B, T, E, generator=g).to(device, dtype).requires_grad_()
    dec = torch.randn(B, S + 1, Dd, generator=g).to(device, dtype).requires_grad_()
    symbols = torch.randint(1, C, (B, S), generator=g).to(device)
    t_lens = torch.full((B,), T, dtype=torch.int64)
    t_lens[1::2] = T - T // 10  # some padding, as in a real batch
    s_lens = torch.full((B,), S, dtype=torch.int64)
    s_lens[1::3] = S - S // 5
    boundary = torch.stack([torch.zeros(B), torch.zeros(B), s_lens, t_lens], 1).long().to(device)
    return enc, dec, symbols, boundary


def bench_config(args, C: int, device: torch.device) -> None:
    B, T, S, J = args.B, args.T, args.S, args.joiner_dim
    E = Dd = J
    dtype = torch.float32
    torch.manual_seed(0)
    joiner = Joiner(E, Dd, J, C).to(device, dtype)
    am_proj = torch.nn.Linear(E, C).to(device, dtype)  # icefall's simple_am_proj
    lm_proj = torch.nn.Linear(Dd, C).to(device, dtype)  # icefall's simple_lm_proj
    enc, dec, symbols, boundary = make_inputs(B, T, S, C, E, Dd, device, dtype)

    def ours() -> None:
        enc.grad = dec.grad = None
        lm = lm_proj(dec)
        am = am_proj(enc)
        simple, (px_grad, py_grad) = rnnt_loss_smoothed(
            lm.float(),
            am.float(),
            symbols,
            0,
            lm_only_scale=0.25,
            am_only_scale=0.0,
            boundary=boundary,
            reduction="sum",
            return_grad=True,
        )
        ranges = get_rnnt_prune_ranges(px_grad, py_grad, boundary, args.prune_range)
        am_p, lm_p = do_rnnt_pruning(joiner.encoder_proj(enc), joiner.decoder_proj(dec), ranges)
        logits = joiner(am_p, lm_p, project_input=False)
        pruned = rnnt_loss_pruned(
            logits.float(), symbols, ranges, 0, boundary=boundary, reduction="sum"
        )
        (0.5 * simple + pruned).backward()

    ta_loss = None
    try:
        import torchaudio.functional as taf

        ta_loss = taf.rnnt_loss
    except Exception as exc:  # pragma: no cover
        print(f"torchaudio unavailable: {exc!r}")

    t_lens = boundary[:, 3].int()
    s_lens = boundary[:, 2].int()
    sym32 = symbols.int()

    def ta_joiner_loss() -> None:
        enc.grad = dec.grad = None
        logits = joiner(enc.unsqueeze(2), dec.unsqueeze(1))  # (B, T, S+1, C)
        ta_loss(logits, sym32, t_lens, s_lens, blank=0, reduction="sum").backward()

    g = torch.Generator().manual_seed(1)
    full_logits = torch.randn(B, T, S + 1, C, generator=g).to(device, dtype).requires_grad_()

    def ta_only() -> None:
        full_logits.grad = None
        ta_loss(full_logits, sym32, t_lens, s_lens, blank=0, reduction="sum").backward()

    rows = [("pruned (ours)", measure(ours, device, args.repeat, args.warmup))]
    refs = []
    for name in args.references:
        set_rnnt_backend(name)
        refs.append((name, measure(ours, device, args.repeat, args.warmup)))
        set_rnnt_backend("builtin")
    if ta_loss is not None:
        rows.append(
            ("torchaudio joiner+loss", measure(ta_joiner_loss, device, args.repeat, args.warmup))
        )
        if not args.skip_loss_only:
            rows.append(
                ("torchaudio loss alone", measure(ta_only, device, args.repeat, args.warmup))
            )
    print(
        f"\n== C={C}  B={B} T={T} S={S} joiner_dim={J} prune_range={args.prune_range} "
        f"device={_device_name(device)}"
    )
    labelled = rows[:1] + [(f"pruned ({n})", r) for n, r in refs] + rows[1:]
    for name, (t, m) in labelled:
        print(f"  {name:34s} {t * 1e3:10.2f} ms   peak {m / 2**30:7.3f} GiB")
    (t0, m0) = rows[0][1]
    for name, (t1, m1) in refs:
        print(f"  ratio ours / {name}: time {t0 / t1:6.2f}x   memory {_ratio(m0, m1)}")
    if len(rows) > 1:
        (t1, m1) = rows[1][1]
        print(
            f"  ratio torchaudio joiner+loss / ours: time {t1 / t0:6.2f}x   memory {_ratio(m1, m0)}"
        )


def _ratio(num: int, den: int) -> str:
    """num / den for peak memory in bytes; 'n/a' when either is under 1 MiB (not measurable by
    the CPU's RSS high-water mark)."""
    if min(num, den) < 2**20:
        return "n/a"
    return f"{num / den:6.2f}x"


def _naive_recursion(px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Anti-diagonal loop with autograd (the slow baseline), default boundary, regular."""
    B, S, T1 = px.shape
    T = T1 - 1
    neg = px.new_full((B, 1), float("-inf"))
    diag = {0: px.new_zeros(B, 1)}  # cells (s, d - s) for s in [lo, hi]
    lo_hi = {0: (0, 0)}
    for d in range(1, S + T + 1):
        lo, hi = max(0, d - T), min(S, d)
        plo, phi = lo_hi[d - 1]
        prev = diag[d - 1]
        cells = []
        for s in range(lo, hi + 1):
            t = d - s
            terms = []
            if s - 1 >= plo and s - 1 <= phi:
                terms.append(prev[:, s - 1 - plo] + px[:, s - 1, t])
            if t - 1 >= 0 and plo <= s <= phi:
                terms.append(prev[:, s - plo] + py[:, s, t - 1])
            cells.append(torch.logsumexp(torch.stack(terms), 0) if terms else neg[:, 0])
        diag[d] = torch.stack(cells, 1)
        lo_hi[d] = (lo, hi)
    return diag[S + T][:, 0]


def bench_recursion(args, device: torch.device) -> None:
    B, T, S = args.B, args.T, args.S
    g = torch.Generator().manual_seed(2)
    px = torch.randn(B, S, T + 1, generator=g).to(device).requires_grad_()
    py = torch.randn(B, S + 1, T, generator=g).to(device).requires_grad_()

    def ours() -> None:
        px.grad = py.grad = None
        mutual_information_recursion(px, py).sum().backward()

    print(
        f"\n== recursion alone (regular, float32) B={B} T={T} S={S} device={_device_name(device)}"
    )
    t0, m0 = measure(ours, device, args.repeat, args.warmup)
    print(f"  {'ours (builtin)':34s} {t0 * 1e3:10.2f} ms   peak {m0 / 2**20:8.1f} MiB")
    px64, py64 = px.detach().double(), py.detach().double()
    s_ours = mutual_information_recursion(px64, py64)  # float64 scores every reference meets
    for name in args.references:
        set_rnnt_backend(name)
        s_ref = mutual_information_recursion(px64, py64)
        t1, m1 = measure(ours, device, args.repeat, args.warmup)
        set_rnnt_backend("builtin")
        err = (s_ref - s_ours).abs().max().item()
        print(
            f"  {name:34s} {t1 * 1e3:10.2f} ms   peak {m1 / 2**20:8.1f} MiB   "
            f"(max |score diff| {err:.1e})"
        )
        print(f"  ratio ours / {name}: {t0 / t1:6.2f}x")
    if not args.skip_naive:
        err = (_naive_recursion(px64, py64) - s_ours).abs().max().item()

        def naive() -> None:
            px.grad = py.grad = None
            _naive_recursion(px, py).sum().backward()

        t1, m1 = measure(naive, device, max(1, args.repeat // 3), 0)
        print(
            f"  {'naive autograd anti-diagonal loop':34s} {t1 * 1e3:10.2f} ms   peak "
            f"{m1 / 2**20:8.1f} MiB   (max |score diff| {err:.1e})"
        )
        print(f"  ratio naive / ours: {t1 / t0:6.1f}x")


def _references(spec: str, device: torch.device) -> list[str]:
    """The external backends to time beside ours, from ``--reference-backends``."""
    from gmot.transducer.backend import EXTERNAL_BACKENDS

    if spec == "none":
        return []
    if spec == "auto":
        names = [n for n in EXTERNAL_BACKENDS if backend_runs_on(n, device)]
        print(f"reference backends: {', '.join(names) or 'none importable'}")
        return names
    names = spec.split(",")
    for n in names:
        if n not in EXTERNAL_BACKENDS:
            raise SystemExit(f"--reference-backends: {n!r} is not one of {EXTERNAL_BACKENDS}")
        if not backend_available(n):
            raise SystemExit(f"--reference-backends: `import {n}` failed")
        if not backend_runs_on(n, device):
            raise SystemExit(f"--reference-backends: {n} was built without CUDA")
    return names


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"]
    )
    p.add_argument("--B", type=int, default=32)
    p.add_argument("--T", type=int, default=250)
    p.add_argument("--S", type=int, default=30)
    p.add_argument("--C", default="500,4336", help="comma list of vocabulary sizes")
    p.add_argument("--joiner-dim", type=int, default=512)
    p.add_argument("--prune-range", type=int, default=5)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument(
        "--reference-backends",
        default="auto",
        help="comma list of k2, fast_rnnt timed beside ours (always builtin) in the same run; "
        "auto: each that imports (with CUDA for --device cuda); none: no reference",
    )
    p.add_argument("--skip-naive", action="store_true", help="skip the naive recursion baseline")
    p.add_argument("--skip-loss-only", action="store_true", help="skip torchaudio loss alone")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    args.references = _references(args.reference_backends, device)
    set_rnnt_backend("builtin")
    bench_recursion(args, device)
    for C in [int(c) for c in args.C.split(",")]:
        bench_config(args, C, device)


if __name__ == "__main__":
    main()
