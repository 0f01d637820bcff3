"""Tests of the Zipformer encoder: shapes, lengths, padding masks, determinism, training."""

import pytest
import torch

from gmot.models.zipformer import build_encoder, output_lengths, set_batch_count
from gmot.models.zipformer.block import Downsample


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_encoder("tiny").eval()


@pytest.mark.parametrize("t", [9, 10, 37, 100, 161])
def test_shapes_and_lengths(tiny, t):
    x = torch.randn(2, t, 80)
    lens = torch.tensor([t, max(9, t - 5)])
    with torch.no_grad():
        out, out_lens, stacks = tiny(x, lens, return_stack_outputs=True)
    t_out = ((t - 7) // 2 + 1) // 2
    assert out.shape == (2, t_out, tiny.output_dim) and tiny.output_dim == 128
    expected = [((int(n) - 7) // 2 + 1) // 2 for n in lens]
    assert out_lens.tolist() == expected == output_lengths(lens).tolist()
    l50 = (t - 7) // 2
    for (h, hl), ds, d in zip(stacks, (1, 2, 4, 8, 4, 2), (64, 96, 96, 128, 96, 96)):
        assert h.shape == (2, -(-l50 // ds), d)
        assert hl.tolist() == [-(-((int(n) - 7) // 2) // ds) for n in lens]
    assert torch.isfinite(out).all()


def test_padded_equals_alone(tiny):
    torch.manual_seed(1)
    lens = torch.tensor([157, 120, 64, 23])
    x = torch.randn(4, 157, 80)
    x[1, 120:] = 100.0  # garbage in the padding must not leak
    with torch.no_grad():
        out, out_lens, stacks = tiny(x, lens, return_stack_outputs=True)
        for i, n in enumerate(lens.tolist()):
            alone, alone_len, alone_stacks = tiny(
                x[i : i + 1, :n], lens[i : i + 1], return_stack_outputs=True
            )
            k = int(alone_len)
            assert int(out_lens[i]) == k
            torch.testing.assert_close(out[i, :k], alone[0], atol=2e-5, rtol=1e-4)
            for (h, hl), (ha, hla) in zip(stacks, alone_stacks):
                kk = int(hla)
                assert int(hl[i]) == kk
                torch.testing.assert_close(h[i, :kk], ha[0, :kk], atol=2e-5, rtol=1e-4)


def test_eval_determinism_and_train_randomness(tiny):
    x = torch.randn(2, 80, 80)
    lens = torch.tensor([80, 70])
    with torch.no_grad():
        a, _ = tiny(x, lens)
        b, _ = tiny(x, lens)
    assert torch.equal(a, b)
    tiny.train()
    try:
        torch.manual_seed(0)
        c, _ = tiny(x, lens)
        torch.manual_seed(1)
        d, _ = tiny(x, lens)
    finally:
        tiny.eval()
    assert not torch.allclose(c, d)  # dropout / skipping active in training only


def test_bad_inputs(tiny):
    with pytest.raises(ValueError, match="x must be"):
        tiny(torch.randn(2, 50, 40), torch.tensor([50, 50]))
    with pytest.raises(ValueError, match="x_lens"):
        tiny(torch.randn(2, 50, 80), torch.tensor([50, 60]))
    with pytest.raises(ValueError, match="unknown Zipformer config"):
        build_encoder("huge")


def test_custom_config_dict():
    enc = build_encoder(
        {
            "num_layers": 1,
            "encoder_dim": "32,48,48,64,48,48",
            "feedforward_dim": 64,
            "encoder_unmasked_dim": 32,
            "num_heads": 2,
            "cnn_module_kernel": 3,
            "embed_channels": (4, 8, 16),
            "embed_convnext_hidden": 32,
        },
        num_features=40,
    ).eval()
    with torch.no_grad():
        out, lens = enc(torch.randn(1, 60, 40), torch.tensor([60]))
    assert out.shape == (1, 13, 64) and lens.tolist() == [13]


def test_downsample_hand():
    ds = Downsample(2)
    with torch.no_grad():
        ds.bias.copy_(torch.tensor([0.0, torch.log(torch.tensor(3.0))]))  # weights 1/4, 3/4
    x = torch.tensor([[[1.0], [2.0], [3.0], [9.0]]])
    y, lens = ds(x, torch.tensor([3]))  # frame 3 is padding -> replaced by frame 2
    assert y[0, :, 0].tolist() == pytest.approx([0.25 + 1.5, 0.75 + 2.25])
    assert lens.tolist() == [2]


def test_set_batch_count_moves_schedules(tiny):
    layer = tiny.encoders[0].layers[0]
    set_batch_count(tiny, 0.0)
    assert float(layer.bypass.floor) == pytest.approx(0.9)
    assert float(layer.bypass.skip_rate) == pytest.approx(0.5)
    set_batch_count(tiny, 1e6)
    assert float(layer.bypass.floor) == pytest.approx(0.2)
    assert float(tiny.encoders[3].encoder.layers[0].bypass.skip_rate) == pytest.approx(
        0.035 * 8**0.5
    )


def test_tiny_overfits_random_batches():
    """Regression of encoder outputs to fixed random targets: the MSE falls by >= 10x."""
    from gmot.optim import ScaledAdam

    torch.manual_seed(0)
    enc = build_encoder("tiny")
    head = torch.nn.Linear(enc.output_dim, 8)
    params = list(enc.named_parameters()) + list(head.named_parameters())
    opt = ScaledAdam(params, lr=0.05)
    batches = []
    for _ in range(2):
        x = torch.randn(4, 100, 80)
        lens = torch.tensor([100, 90, 80, 70])
        t_out = int(output_lengths(torch.tensor(100)))
        batches.append((x, lens, torch.randn(4, t_out, 8)))

    def loss_of(x, lens, y):
        out, out_lens = enc(x, lens)
        mask = torch.arange(out.shape[1])[None, :] < out_lens[:, None]
        err = (head(out) - y) ** 2
        return (err * mask[..., None]).sum() / (mask.sum() * 8)

    enc.eval()
    with torch.no_grad():
        start = sum(float(loss_of(*b)) for b in batches)
    enc.train()
    set_batch_count(enc, 1e5)  # past warm-up schedules: little layer skipping
    for step in range(80):
        x, lens, y = batches[step % 2]
        opt.zero_grad()
        loss_of(x, lens, y).backward()
        opt.step()
    enc.eval()
    with torch.no_grad():
        end = sum(float(loss_of(*b)) for b in batches)
    assert end < start / 10, (start, end)  # measured: 2.14 -> 0.079 (27x)


def _autocast_step(device: str) -> None:
    torch.manual_seed(0)
    enc = build_encoder("tiny").to(device).train()
    x = torch.randn(3, 120, 80, device=device)
    lens = torch.tensor([120, 100, 60], device=device)
    with torch.autocast(device, dtype=torch.bfloat16):
        out, out_lens = enc(x, lens)
    out.float().pow(2).mean().backward()
    assert out.shape == (3, 28, 128) and out_lens.tolist() == [28, 23, 13]
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_bf16_autocast_cpu():
    _autocast_step("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_autocast_cuda():
    _autocast_step("cuda")
