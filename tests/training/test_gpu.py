"""GPU paths (skipped without CUDA): bf16 and fp16 (+ GradScaler) training steps, losses in fp32."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402
from test_heads_train import make_params, tiny_config  # noqa: E402

from gmot.models.asr_model import build_model  # noqa: E402
from gmot.optim import ScaledAdam  # noqa: E402
from gmot.training.loop import compute_loss  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_mixed_precision_step_on_gpu(dtype):
    dev = torch.device("cuda")
    model = build_model(
        tiny_config(use_transducer=True, use_ctc=True, use_attention_decoder=True,
                    gmot_plm_dim=synthetic.PLM_DIM)
    ).to(dev)  # fmt: skip
    opt = ScaledAdam(list(model.named_parameters()), lr=0.05)
    scaler = torch.amp.GradScaler("cuda", init_scale=1.0, enabled=dtype == "fp16")
    params = make_params(gmot_loss_scale=0.5, use_bf16=dtype == "bf16", use_fp16=dtype == "fp16")
    batch = synthetic.collate(synthetic.make_utterances(4))
    # eval mode (no layer skipping): the mixed-precision loss is close to the fp32 one
    model.eval()
    with torch.no_grad():
        mp, _, _ = compute_loss(params, model, batch, dev, is_training=False)
        fp = params.use_bf16, params.use_fp16
        params.use_bf16 = params.use_fp16 = False
        ref, _, _ = compute_loss(params, model, batch, dev, is_training=False)
        params.use_bf16, params.use_fp16 = fp
    assert mp.dtype == torch.float32
    assert abs(float(mp) - float(ref)) < 0.05 * abs(float(ref))
    model.train()
    loss, m, _ = compute_loss(params, model, batch, dev, is_training=True, batch_idx_train=1)
    assert torch.isfinite(loss)
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert all(k in m for k in ("simple", "pruned", "ctc", "attention", "gmot"))
    for p in model.parameters():
        assert torch.isfinite(p).all()
