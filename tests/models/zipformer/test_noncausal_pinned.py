"""A non-causal Zipformer is unchanged by the streaming work (issue 23).

The reference numbers below were computed with the code at commit 8090e15 (before ``causal``,
``chunk_size`` and ``left_context_frames`` existed) by running exactly the steps of
:func:`_run` in a script (torch CPU, float32, OMP_NUM_THREADS=1) and printing the values.
"""

import hashlib

import pytest
import torch

from gmot.models.zipformer import build_encoder, set_batch_count

PARAM_COUNT = 285
PARAM_SIGNATURE = "a5d3ad36c4cd4f44243d2468fa9a46c9a12eb19c4b09a7c9ca30f3f7afe1c43a"
OUT_LENS = [14, 9]
OUT_0_HEAD = [
    [0.2163054496049881, 1.5069308280944824, 0.34151941537857056, 0.24729251861572266],
    [0.21694764494895935, 1.5041221380233765, 0.3413754403591156, 0.24949724972248077],
]
OUT_0_SUM, OUT_0_ABS = -153.5681005770457, 837.7618654608377
OUT_1_SUM, OUT_1_ABS = -98.7706592475297, 538.747119541571
STACK_0_ABS = [1336.588383, 773.861197, 397.872524, 251.258787, 419.172285, 843.881594]
TRAIN_ABS = (861.2023129264417, 552.7957147356428)
RNG_AFTER_TRAIN = 0.8009160757064819


def _run():
    torch.manual_seed(0)
    enc = build_encoder("tiny").eval()
    sig = ";".join(f"{n}:{tuple(p.shape)}" for n, p in enc.named_parameters())
    torch.manual_seed(1)
    x = torch.randn(2, 61, 80)
    lens = torch.tensor([61, 44])
    with torch.no_grad():
        out, out_lens, stacks = enc(x, lens, return_stack_outputs=True)
    enc.train()
    set_batch_count(enc, 1000.0)
    torch.manual_seed(2)
    out_train, _ = enc(x, lens)  # with autograd on, as in the reference script
    out_train = out_train.detach()
    rng_after = float(torch.rand(()))
    return enc, sig, out, out_lens, stacks, out_train, rng_after


def test_noncausal_parameters_and_outputs_unchanged():
    enc, sig, out, out_lens, stacks, out_train, rng_after = _run()
    assert not enc.config.causal
    assert len(list(enc.parameters())) == PARAM_COUNT
    assert hashlib.sha256(sig.encode()).hexdigest() == PARAM_SIGNATURE
    assert out_lens.tolist() == OUT_LENS
    torch.testing.assert_close(out[0, :2, :4], torch.tensor(OUT_0_HEAD), atol=1e-6, rtol=1e-6)
    k = OUT_LENS[1]
    got = [
        float(out[0].double().sum()),
        float(out[0].double().abs().sum()),
        float(out[1, :k].double().sum()),
        float(out[1, :k].double().abs().sum()),
    ]
    assert got == pytest.approx([OUT_0_SUM, OUT_0_ABS, OUT_1_SUM, OUT_1_ABS], rel=1e-5)
    stack_abs = [float(h[0].double().abs().sum()) for h, _ in stacks]
    assert stack_abs == pytest.approx(STACK_0_ABS, rel=1e-5)
    # Train mode draws the same random numbers as before (no chunk draw without causal).
    train_abs = (
        float(out_train[0].double().abs().sum()),
        float(out_train[1, :k].double().abs().sum()),
    )
    assert train_abs == pytest.approx(TRAIN_ABS, rel=1e-5)
    assert rng_after == RNG_AFTER_TRAIN
