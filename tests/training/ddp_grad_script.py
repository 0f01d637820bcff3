"""Helper script for test_ddp.py: gradients of world size 2 (gloo, CPU) vs world size 1.

Usage: python ddp_grad_script.py OUT_DIR PORT. Writes OUT_DIR/grads-ws{1,2}.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402
from test_heads_train import make_params, tiny_config  # noqa: E402

from gmot.models.asr_model import build_model  # noqa: E402
from gmot.training.ddp import cleanup_dist, setup_dist  # noqa: E402
from gmot.training.loop import compute_loss  # noqa: E402

CFG = tiny_config(use_transducer=True, use_ctc=True, gmot_plm_dim=synthetic.PLM_DIM)


def _model():
    torch.manual_seed(0)
    m = build_model(CFG)
    m.eval()  # no layer skipping / dropout: the same function on every rank
    return m


def _halves():
    batch = synthetic.make_utterances(4)
    return [synthetic.collate(batch[0:2]), synthetic.collate(batch[2:4])]


def _grads(model) -> dict:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def worker(rank: int, out: str, port: int) -> None:
    torch.set_num_threads(1)
    setup_dist(rank, 2, port, backend="gloo")
    model = _model()
    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    params = make_params(gmot_loss_scale=0.5)
    loss, _, _ = compute_loss(params, ddp, _halves()[rank], torch.device("cpu"), True, 5)
    loss.backward()
    if rank == 0:
        torch.save(_grads(model), Path(out) / "grads-ws2.pt")
    cleanup_dist()


def main() -> None:
    out, port = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    # world size 1: the mean of the two halves' gradients (what DDP's all-reduce computes)
    model = _model()
    params = make_params(gmot_loss_scale=0.5)
    acc = None
    for half in _halves():
        model.zero_grad()
        loss, _, _ = compute_loss(params, model, half, torch.device("cpu"), True, 5)
        loss.backward()
        g = _grads(model)
        acc = g if acc is None else {k: acc[k] + g[k] for k in acc}
    torch.save({k: v / 2 for k, v in acc.items()}, Path(out) / "grads-ws1.pt")
    mp.spawn(worker, args=(out, port), nprocs=2, join=True)


if __name__ == "__main__":
    main()
