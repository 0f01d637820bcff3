#!/usr/bin/env python3
"""Render the GM-OT transport plan of one utterance under a trained model (run from a recipe dir).

    ../../../tools/plot_gmot_plan.py --checkpoint zipformer_gmot/exp/epoch-6.pt \\
        --cuts data/plm/hsk_cuts_dev.jsonl.gz --out plan.png [--cut-id ID] [--epsilon 0.1 0.01]

Loads the model (its running averaged weights unless --no-average), encodes the cut's audio,
projects the tapped frames with the model's GM-OT adapter, and solves the model's own GM-OT
problem against the cut's cached PLM features. Each ``--epsilon`` value gives one PNG (suffix
``-eps<value>``) so the effect of the entropic regularisation on the plan can be seen; the plan's
entropy and its distance to the uniform coupling are printed. For a model trained with
``--gmot-center-plm 1`` the targets are centred on the mean of the first 64 cuts' features.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

import numpy as np
import torch


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="epoch-N.pt or checkpoint-B.pt")
    p.add_argument("--cuts", type=Path, required=True, help="cuts with PLM targets (data/plm/...)")
    p.add_argument("--cut-id", default=None, help="utterance to plot (default: the first cut)")
    p.add_argument("--out", type=Path, required=True, help="output PNG path")
    p.add_argument(
        "--epsilon",
        type=float,
        nargs="*",
        default=None,
        help="entropic regularisation(s) to solve with (default: the model's own)",
    )
    p.add_argument("--no-average", action="store_true", help="use 'model', not 'model_avg'")
    return p


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    from lhotse import load_manifest_lazy

    from gmot.decoding.features import compute_fbank, model_num_features
    from gmot.decoding.model_loading import load_checkpoint_model
    from gmot.ot import GMOTLoss, plot_transport_plan
    from gmot.plm.cache import load as load_plm

    model, cfg, _ = load_checkpoint_model(args.checkpoint, use_average=not args.no_average)
    if not cfg.get("gmot_plm_dim"):
        raise SystemExit(f"{args.checkpoint}: this model was trained without GM-OT (no adapter)")

    cut = None
    pool = []  # PLM features of the first cuts: the "batch" a centring model subtracts
    for c in load_manifest_lazy(args.cuts):
        if len(pool) < 64:
            pool.append(load_plm(c)[0])
        if cut is None and (args.cut_id is None or c.id == args.cut_id):
            cut = c
        if cut is not None and len(pool) >= 64:
            break
    if cut is None:
        raise SystemExit(f"cut {args.cut_id!r} not found in {args.cuts}")
    z, tokens = load_plm(cut)
    if cfg.get("gmot_center_plm", False):
        # as in training (gmot.ot.center_features over a batch): subtract the mean token
        # feature of a batch-sized pool of cuts
        z = z - np.concatenate(pool).mean(axis=0)
    feats, feat_lens = compute_fbank([cut.load_audio()[0]], num_features=model_num_features(model))
    with torch.no_grad():
        enc, enc_lens, stacks = model.encoder(feats, feat_lens, return_stack_outputs=True)
        layer = cfg.get("gmot_layer", -1)
        tap, tap_lens = (enc, enc_lens) if layer < 0 else stacks[layer]
        h = model.gmot_adapter(tap).float()
    z_t = torch.from_numpy(z)[None]
    z_lens = torch.tensor([z.shape[0]])
    loss_kwargs = dict(cfg["gmot_loss"])
    epsilons = args.epsilon or [loss_kwargs["epsilon"]]
    text = cut.supervisions[0].text
    for eps in epsilons:
        loss_kwargs["epsilon"] = eps
        loss_fn = GMOTLoss(**loss_kwargs)
        with torch.no_grad():
            value, plans = loss_fn(h, tap_lens, z_t, z_lens)
        la, lt = int(tap_lens[0]), int(z_lens[0])
        plan = plans[0, :la, :lt]
        p = plan.clamp_min(1e-30)
        entropy = float(-(p * p.log()).sum())
        tv = 0.5 * float((plan - 1.0 / (la * lt)).abs().sum())
        out = args.out if len(epsilons) == 1 else args.out.with_stem(f"{args.out.stem}-eps{eps:g}")
        title = f"{text} (alpha={loss_kwargs['alpha']:g}, eps={eps:g})"
        plot_transport_plan(plan, tokens, out, title=title)
        print(
            f"{out}: eps={eps:g} loss={float(value[0]):.4f} plan entropy={entropy:.3f} nats "
            f"(uniform {math.log(la * lt):.3f}), total variation to uniform={tv:.3f}, "
            f"{la} frames x {lt} tokens"
        )


if __name__ == "__main__":
    main()
