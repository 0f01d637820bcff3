#!/usr/bin/env python3
"""Does the GM-OT solver solve at the budget it trains with? Real encoder/PLM features.

Takes a GM-OT checkpoint and a cut manifest with PLM targets (``data/plm/..._train``), builds one
training-sized batch of adapter outputs ``h`` (B, La, Dp) and (centred) PLM features ``z``
(B, Lt, Dp) as training does, and solves it with several outer x inner iteration budgets in
float32 (as in training). Each is compared with a reference solve of the same problem in
float64 with a budget 30x the default (tolerances 1e-10), measured in the same run: relative
error of the loss value, L1 distance of the plans (sum over the batch / B), whether the outer
loop reached its tolerance, and seconds per solve.

    cd egs/hsk/ASR   # the cuts' feature paths are relative to the recipe directory
    python ../../../bench/bench_gmot_convergence.py --checkpoint zipformer_gmot/exp/epoch-4.pt
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a GM-OT model checkpoint")
    p.add_argument(
        "--cuts",
        type=Path,
        default=Path("data/plm/hsk_cuts_train.jsonl.gz"),
        help="cuts with PLM targets (and features, or audio)",
    )
    p.add_argument("--lang-dir", type=Path, default=Path("data/lang_char"), help="tokens.txt dir")
    p.add_argument("--batch-size", type=int, default=24, help="utterances in the batch")
    p.add_argument(
        "--budgets",
        default="10x50,20x50,10x200,30x100,50x200",
        help="outer x inner iteration budgets to compare (the first is the training default)",
    )
    p.add_argument(
        "--settings",
        default="0.5:0.1,0.5:0.02,1.0:0.1",
        help="alpha:epsilon pairs to test",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed solves per budget")
    return p


def batch_features(checkpoint: Path, cuts_path: Path, lang_dir: Path, batch_size: int):
    """(h, h_lens, z, z_lens, model_config) of the first ``batch_size`` cuts, as in training."""
    from lhotse import CutSet, load_manifest_lazy

    from gmot.data.dataset import AsrDataset
    from gmot.data.tokens import TokenTable
    from gmot.decoding.model_loading import load_checkpoint_model
    from gmot.ot.costs import center_features

    model, cfg, _ = load_checkpoint_model(checkpoint)
    if not cfg.get("gmot_plm_dim"):
        raise SystemExit(f"{checkpoint}: trained without GM-OT")
    cuts = []
    for c in load_manifest_lazy(cuts_path):
        cuts.append(c)
        if len(cuts) == batch_size:
            break
    ds = AsrDataset(
        TokenTable.load(lang_dir / "tokens.txt"), on_the_fly_feats=not cuts[0].has_features
    )
    batch = ds[CutSet.from_cuts(cuts)]
    if batch is None:
        raise SystemExit(f"no readable cut among the first {batch_size} of {cuts_path}")
    with torch.no_grad():
        enc, enc_lens, stacks = model.encoder(
            batch["features"], batch["feature_lens"], return_stack_outputs=True
        )
        layer = cfg.get("gmot_layer", -1)
        tap, tap_lens = (enc, enc_lens) if layer < 0 else stacks[layer]
        h = model.gmot_adapter(tap).float()
    z, z_lens = batch["plm_feats"].float(), batch["plm_lens"]
    if cfg.get("gmot_center_plm"):
        z = center_features(z, z_lens)
    return h, tap_lens, z, z_lens, cfg


def main(argv: list[str] | None = None) -> None:
    from gmot.ot import GMOTLoss

    a = get_parser().parse_args(argv)
    torch.manual_seed(0)
    h, hl, z, zl, cfg = batch_features(a.checkpoint, a.cuts, a.lang_dir, a.batch_size)
    base = dict(cfg["gmot_loss"])
    print(
        f"batch B={h.shape[0]}, La<={h.shape[1]}, Lt<={z.shape[1]}, Dp={h.shape[2]}; "
        f"training default {base['max_iter']} outer x {base['max_iter_inner']} inner, "
        f"tol {base['tol']:g} / {base['tol_inner']:g}"
    )
    budgets = [tuple(int(v) for v in b.split("x")) for b in a.budgets.split(",")]
    print("alpha  eps    budget    value_rel_err  plan_L1   outer_converged  s/solve  vs_default")
    for setting in a.settings.split(","):
        alpha, eps = (float(v) for v in setting.split(":"))
        kw = {**base, "alpha": alpha, "epsilon": eps}
        ref_kw = {**kw, "max_iter": 30 * base["max_iter"], "max_iter_inner": 30 * 50}
        ref_kw.update(tol=1e-10, tol_inner=1e-10)
        with torch.no_grad():
            v_ref, t_ref = GMOTLoss(**ref_kw)(h.double(), hl, z.double(), zl)
        t_default = None
        for outer, inner in budgets:
            loss = GMOTLoss(**{**kw, "max_iter": outer, "max_iter_inner": inner})
            with torch.no_grad():
                t0 = time.perf_counter()
                for _ in range(a.repeats):
                    v, t, d = loss(h, hl, z, zl, return_diagnostics=True)
                sec = (time.perf_counter() - t0) / a.repeats
            t_default = t_default or sec
            rel = float(((v.double() - v_ref).abs() / v_ref.abs().clamp_min(1e-12)).max())
            l1 = float((t.double() - t_ref).abs().sum() / h.shape[0])
            print(
                f"{alpha:<6g} {eps:<6g} {outer:>3}x{inner:<5} {rel:13.2e}  {l1:8.2e}  "
                f"{str(d['outer_converged']):>15}  {sec:7.3f}  {sec / t_default:9.2f}x"
            )


if __name__ == "__main__":
    main()
