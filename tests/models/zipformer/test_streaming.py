"""Streaming Zipformer (issue 23): chunk-by-chunk encoding equals simulated streaming.

Small causal configs (a few hundred thousand parameters) so that every test runs in seconds.
"""

import pytest
import torch

from gmot.models.zipformer import Zipformer, ZipformerConfig, set_batch_count
from gmot.models.zipformer.streaming import encode_streaming

SMALL = dict(
    num_layers=1,
    encoder_dim=(32, 48, 48, 64, 48, 48),
    feedforward_dim=(64, 96, 96, 128, 96, 96),
    encoder_unmasked_dim=32,
    num_heads=2,
    cnn_module_kernel=(7, 7, 5, 5, 5, 7),
    query_head_dim=16,
    value_head_dim=8,
    pos_dim=16,
    embed_channels=(4, 8, 16),
    embed_convnext_hidden=32,
)


def _encoder(seed: int = 0, **kw) -> Zipformer:
    cfg = dict(SMALL, causal=True, chunk_size=(16, 32, -1), left_context_frames=(32, 64, -1))
    cfg.update(kw)
    torch.manual_seed(seed)
    return Zipformer(ZipformerConfig(**cfg)).eval()


def _amplify(enc: Zipformer) -> Zipformer:
    """Random weights whose attention, convolution and front-end branches matter: the published
    initialisation scales residual branches down so much that a wrong left context changes the
    output by only ~1e-4; x10 output projections and random bypass scales make it ~1e-3."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in enc.named_parameters():
            if name.endswith("out_proj.weight") or "pointwise2" in name:
                p.mul_(10.0)
            if name.endswith("bypass_scale"):
                p.uniform_(0.3, 1.0, generator=g)
    return enc


def _assert_same(enc: Zipformer, x: torch.Tensor, lens: torch.Tensor) -> None:
    with torch.no_grad():
        ref, ref_lens = enc(x, lens)
        out, out_lens = encode_streaming(enc, x, lens)
    assert out.shape == ref.shape
    assert out_lens.tolist() == ref_lens.tolist()
    for i, k in enumerate(ref_lens.tolist()):
        torch.testing.assert_close(out[i, :k], ref[i, :k], atol=1e-5, rtol=1e-5)


# (T-7)//2 = 64 for T = 135: a multiple of both chunk sizes; the others are not.
@pytest.mark.parametrize("chunk,left", [(16, 32), (32, 64), (8, 16), (16, 8)])
def test_streaming_equals_simulated_random_weights(chunk, left):
    enc = _amplify(_encoder(chunk_size=(chunk,), left_context_frames=(left,)))
    torch.manual_seed(1)
    lens = torch.tensor([173, 135, 62, 9])
    x = torch.randn(4, 173, 80)
    x[2, 62:] = 50.0  # garbage past a length must not matter
    _assert_same(enc, x, lens)
    for t in (9, 40, 135):  # one utterance alone, several lengths
        _assert_same(enc, x[1:2, :t], torch.tensor([t]))


def test_streaming_with_freq_pool_equals_simulated():
    enc = _amplify(_encoder(chunk_size=(16,), left_context_frames=(32,), freq_pool=2))
    assert enc.encoder_embed.in_features == 40
    torch.manual_seed(2)
    _assert_same(enc, torch.randn(2, 135, 80), torch.tensor([135, 70]))


def test_streaming_with_relu_front_end_equals_simulated():
    enc = _amplify(_encoder(chunk_size=(16,), left_context_frames=(32,), embed_activation="relu"))
    assert isinstance(enc.encoder_embed.convnext.activation, torch.nn.ReLU)
    torch.manual_seed(3)
    _assert_same(enc, torch.randn(2, 135, 80), torch.tensor([135, 70]))


def test_chunk_size_and_left_context_change_the_output():
    """The equality tests can tell: another chunk or left context moves outputs by >> 1e-5."""
    torch.manual_seed(1)
    x, lens = torch.randn(1, 173, 80), torch.tensor([173])
    with torch.no_grad():
        ref, _ = encode_streaming(
            _amplify(_encoder(chunk_size=(16,), left_context_frames=(16,))), x, lens
        )
        for kw in (dict(left_context_frames=(32,)), dict(chunk_size=(32,))):
            other, _ = encode_streaming(
                _amplify(_encoder(**dict(dict(chunk_size=(16,), left_context_frames=(16,)), **kw))),
                x,
                lens,
            )
            assert (other - ref).abs().max() > 1e-4


def test_streaming_equals_simulated_trained_weights():
    enc = _encoder(seed=3)
    opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    enc.train()
    torch.manual_seed(4)
    for step in range(4):
        set_batch_count(enc, 1000.0 * step)
        x = torch.randn(3, 120, 80)
        out, out_lens = enc(x, torch.tensor([120, 100, 77]))
        loss = (out**2).mean() + out[..., :8].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval()
    torch.manual_seed(5)
    x = torch.randn(3, 190, 80)
    _assert_same(enc, x, torch.tensor([190, 151, 30]))


def test_states_keep_their_shapes_and_count_frames():
    enc = _encoder()
    states = enc.get_init_states(2, torch.device("cpu"))
    assert enc.chunk_shift == 32 and enc.right_padding == 13 and enc.chunk_input_frames == 45
    x = torch.randn(2, 45, 80)
    with torch.no_grad():
        out, out_lens, new = enc.streaming_forward(x, torch.tensor([45, 20]), states)
    assert out.shape == (2, 8, enc.output_dim)
    assert out_lens.tolist() == [8, 3]  # (20 - 7) // 2 = 6 frames at 50 Hz -> 3 at 25 Hz
    assert [s.shape for s in new] == [s.shape for s in states]
    assert new[-1].tolist() == [16, 6]


def test_simulated_streaming_does_not_look_ahead():
    """Output frames of chunk c depend on fbank frames < 2 * 16 * (c + 1) + 13 only."""
    enc = _encoder()
    torch.manual_seed(2)
    x = torch.randn(1, 200, 80)
    lens = torch.tensor([200])
    y = x.clone()
    y[:, 2 * 32 + 13 :] = torch.randn(1, 200 - 77, 80)  # after chunk 1's look-ahead
    with torch.no_grad():
        a, _ = enc(x, lens)
        b, _ = enc(y, lens)
    torch.testing.assert_close(a[:, :16], b[:, :16], atol=1e-6, rtol=1e-6)  # chunks 0 and 1
    assert (a[:, 16:] - b[:, 16:]).abs().max() > 1e-3


def test_dynamic_chunk_draws_are_seeded():
    enc = _encoder().train()

    def draws(seed):
        torch.manual_seed(seed)
        return [enc.chunk_params() for _ in range(30)]

    assert draws(7) == draws(7)
    seen = set(draws(7))
    assert {c for c, _ in seen} == {16, 32, -1}
    assert all(left == -1 for c, left in seen if c == -1)
    assert {left for c, left in seen if c > 0} == {32, 64, -1}
    x, lens = torch.randn(2, 100, 80), torch.tensor([100, 80])
    torch.manual_seed(8)
    a, _ = enc(x, lens)
    torch.manual_seed(8)
    b, _ = enc(x, lens)
    assert torch.equal(a, b)
    assert enc.eval().chunk_params() == (16, 32)


def test_causal_keeps_parameter_names_and_shapes():
    causal = _encoder()
    torch.manual_seed(0)
    plain = Zipformer(ZipformerConfig(**SMALL))
    assert [(n, p.shape) for n, p in causal.named_parameters()] == [
        (n, p.shape) for n, p in plain.named_parameters()
    ]


def test_streaming_errors():
    enc = _encoder()
    states = enc.get_init_states(2)
    x = torch.randn(2, 45, 80)
    lens = torch.tensor([45, 45])
    with pytest.raises(ValueError, match=r"x must be one chunk of shape \(B, 45, 80\)"):
        enc.streaming_forward(x[:, :40], lens, states)
    with pytest.raises(ValueError, match=r"x_lens must lie in \[0, 45\]"):
        enc.streaming_forward(x, torch.tensor([46, 3]), states)
    with pytest.raises(ValueError, match=r"states\[0\] has shape .* another batch size"):
        enc.streaming_forward(x, lens, enc.get_init_states(3))
    other = _encoder(left_context_frames=(64,))
    with pytest.raises(ValueError, match=r"states\[0\] has shape .* another model"):
        enc.streaming_forward(x, lens, other.get_init_states(2))
    with pytest.raises(ValueError, match="states must be the list of"):
        enc.streaming_forward(x, lens, states[:-1])
    with pytest.raises(RuntimeError, match="eval"):
        enc.train().streaming_forward(x, lens, states)
    plain = Zipformer(ZipformerConfig(**SMALL)).eval()
    for call in (
        lambda: plain.get_init_states(1),
        lambda: plain.streaming_forward(x, lens, states),
        lambda: encode_streaming(plain, x, lens),
    ):
        with pytest.raises(ValueError, match=r"ZipformerConfig.causal=False"):
            call()
    full = _encoder(chunk_size=(-1, 16))
    with pytest.raises(ValueError, match=r"chunk_size \(-1\)"):
        full.get_init_states(1)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(chunk_size=(16,)), "needs causal=True"),
        (dict(causal=True, chunk_size=(12,)), "positive multiples of 8"),
        (dict(causal=True, left_context_frames="0"), "left_context_frames values"),
        (dict(causal=True, chunk_size="16,x"), "comma-separated integers"),
        (dict(causal=True, chunk_size=()), "at least one value"),
    ],
)
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        ZipformerConfig(**dict(SMALL, **kw))


def test_config_accepts_strings_and_round_trips():
    cfg = ZipformerConfig(**dict(SMALL, causal=1, chunk_size="16,32,-1", left_context_frames=64))
    assert cfg.causal is True
    assert cfg.chunk_size == (16, 32, -1) and cfg.left_context_frames == (64,)
    again = ZipformerConfig(**cfg.to_dict())
    assert again == cfg
    assert ZipformerConfig().chunk_size == (-1,) and not ZipformerConfig().causal
