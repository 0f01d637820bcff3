"""Time pooling before the front end (``ZipformerConfig.time_pool``) and the output lengths and
length filter that follow it."""

import pytest
import torch

from gmot.data.filters import frames_after_subsampling
from gmot.models.zipformer import build_encoder, output_lengths
from gmot.models.zipformer.config import get_config
from gmot.models.zipformer.encoder import pool_frames

CFG = {"base": "tiny", "input_norm": "utterance"}


def test_pool_frames_averages_consecutive_frames():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 11, 5, generator=g)
    lens = torch.tensor([11, 6])
    for pool in (2, 3):  # reference: frames (k*pool .. k*pool + pool - 1) averaged, by a loop
        ref = torch.stack([x[:, k * pool : (k + 1) * pool].mean(1) for k in range(11 // pool)], 1)
        out, out_lens = pool_frames(x, lens, pool)
        torch.testing.assert_close(out, ref)
        assert out_lens.tolist() == [11 // pool, 6 // pool]
    same, same_lens = pool_frames(x, lens, 1)
    assert same is x and same_lens is lens


def test_pooled_encoder_is_the_encoder_on_pooled_input():
    """With time_pool 2 the encoder computes what the same weights compute on frame pairs
    averaged beforehand (pooling first, then the per-utterance normalisation)."""
    torch.manual_seed(0)
    pooled = build_encoder({**CFG, "time_pool": 2}).eval()
    plain = build_encoder(CFG).eval()
    plain.load_state_dict(pooled.state_dict())  # time pooling adds no parameter
    x = torch.randn(2, 181, 80) * 3.0 + 5.0
    lens = torch.tensor([181, 120])
    with torch.no_grad():
        a, a_lens = pooled(x, lens)
        b, b_lens = plain((x[:, 0:180:2] + x[:, 1:180:2]) / 2, lens // 2)
    assert a_lens.tolist() == b_lens.tolist() == [21, 13]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_time_pool_with_output_factor_1_keeps_25_hz_and_pads_cleanly():
    torch.manual_seed(0)
    enc = build_encoder({**CFG, "time_pool": 2, "output_downsampling_factor": 1}).eval()
    lens = torch.tensor([301, 250, 100, 18])
    x = torch.randn(4, 301, 80)
    x[1, 250:] = 100.0  # garbage in the padding must not leak
    with torch.no_grad():
        out, out_lens = enc(x, lens)
        expected = [(int(n) // 2 - 7) // 2 for n in lens]  # 50 Hz pooled -> 25 Hz
        assert out_lens.tolist() == expected == output_lengths(lens, 2, 1).tolist()
        assert out.shape == (4, max(expected), enc.output_dim)
        for i, n in enumerate(lens.tolist()):
            alone, alone_len = enc(x[i : i + 1, :n], lens[i : i + 1])
            k = int(alone_len)
            assert int(out_lens[i]) == k
            torch.testing.assert_close(out[i, :k], alone[0], atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"x_lens must lie in \[18, T=301\]"):
        enc(x, torch.tensor([301, 250, 100, 17]))


@pytest.mark.parametrize("pool,factor", [(1, 2), (2, 1), (2, 2), (3, 1)])
def test_length_filter_matches_the_encoder(pool, factor):
    """The cut filter's frame count from a duration is the encoder's output length."""
    enc = build_encoder({**CFG, "time_pool": pool, "output_downsampling_factor": factor}).eval()
    for t in (30, 57, 100, 163):
        with torch.no_grad():
            _, out_lens = enc(torch.randn(1, t, 80), torch.tensor([t]))
        got = frames_after_subsampling(t / 100, time_pool=pool, output_downsampling_factor=factor)
        assert got == int(out_lens) == int(output_lengths(torch.tensor(t), pool, factor))


def test_time_pool_validation():
    assert get_config("tiny").time_pool == 1
    with pytest.raises(ValueError, match="time_pool must be >= 1"):
        get_config({"base": "tiny", "time_pool": 0})
    with pytest.raises(ValueError, match="time_pool=2 is for non-causal encoders"):
        get_config({"base": "tiny", "time_pool": 2, "causal": True, "chunk_size": "16"})
    with pytest.raises(ValueError, match="output_downsampling_factor must be >= 1"):
        get_config({"base": "tiny", "output_downsampling_factor": 0})
