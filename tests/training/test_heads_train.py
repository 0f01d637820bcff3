"""Every head combination (with and without GM-OT) trains: the loss on the training set falls.

Uses the real pieces: tiny Zipformer, gmot.transducer losses, GMOTLoss, ScaledAdam + Eden, and
the training loop's ``compute_loss`` (icefall scale schedule).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402

from gmot.models.asr_model import build_model  # noqa: E402
from gmot.optim import Eden, ScaledAdam  # noqa: E402
from gmot.training.loop import compute_loss, transducer_scales  # noqa: E402

HEADS = {
    "transducer": dict(use_transducer=True),
    "ctc": dict(use_transducer=False, use_ctc=True),
    "attention": dict(use_transducer=False, use_ctc=True, use_attention_decoder=True),
    "transducer+ctc": dict(use_transducer=True, use_ctc=True),
}


def make_params(**kw) -> argparse.Namespace:
    p = dict(
        warm_step=20,
        prune_range=5,
        am_scale=0.0,
        lm_scale=0.25,
        ctc_loss_scale=0.5,
        attention_decoder_loss_scale=0.5,
        gmot_loss_scale=0.0,
        gmot_warmup_batches=0,
        use_fp16=False,
        use_bf16=False,
    )
    p.update(kw)
    return argparse.Namespace(**p)


def tiny_config(**heads) -> dict:
    return dict(
        vocab_size=synthetic.VOCAB,
        encoder="tiny",
        decoder_dim=32,
        joiner_dim=32,
        attention_decoder=dict(attention_dim=32, feedforward_dim=64, num_layers=1, dropout=0.0),
        **heads,
    )


def test_transducer_schedule_matches_icefall():
    assert transducer_scales(0, 2000) == (1.0, 0.1)
    s, p = transducer_scales(1000, 2000)
    assert s == pytest.approx(0.75) and p == pytest.approx(0.55)
    assert transducer_scales(2000, 2000) == (0.5, 1.0)
    assert transducer_scales(5000, 2000) == (0.5, 1.0)


@pytest.mark.parametrize("gmot", [False, True], ids=["plain", "gmot"])
@pytest.mark.parametrize("heads", list(HEADS))
def test_head_combination_loss_falls(heads, gmot):
    torch.manual_seed(0)
    utts = synthetic.make_utterances(8)
    batches = [synthetic.collate(utts[i : i + 4]) for i in (0, 4)]
    cfg = tiny_config(**HEADS[heads])
    if gmot:
        cfg["gmot_plm_dim"] = synthetic.PLM_DIM
    model = build_model(cfg)
    params = make_params(gmot_loss_scale=0.5 if gmot else 0.0)
    opt = ScaledAdam(list(model.named_parameters()), lr=0.06)
    sched = Eden(opt, lr_batches=1000, lr_epochs=100, warmup_batches=1, warmup_start=1.0)
    dev = torch.device("cpu")

    def eval_terms() -> dict:
        model.eval()
        tot: dict = {}
        for b in batches:
            _, m, _ = compute_loss(params, model, b, dev, is_training=False)
            for k, v in m.items():
                tot[k] = tot.get(k, 0.0) + v
        model.train()
        return {k: v / tot["frames"] for k, v in tot.items()}

    before = eval_terms()
    steps = 16
    for step in range(steps):
        loss, m, _ = compute_loss(
            params, model, batches[step % 2], dev, is_training=True, batch_idx_train=step + 1
        )
        assert torch.isfinite(loss)
        assert ("gmot" in m) == gmot
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step_batch(step + 1)
    after = eval_terms()
    terms = [k for k in ("simple", "pruned", "ctc", "attention", "gmot") if k in before]
    assert terms
    for k in terms:
        assert after[k] < 0.9 * before[k], (k, before[k], after[k])
