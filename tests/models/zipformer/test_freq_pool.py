"""Frequency pooling before the front end (``ZipformerConfig.freq_pool``); its streaming test
is in test_streaming.py."""

import pytest
import torch

from gmot.models.zipformer import build_encoder
from gmot.models.zipformer.config import get_config
from gmot.models.zipformer.encoder import pool_bins


def test_pool_bins_averages_neighbouring_bins():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 12, generator=g)
    for pool in (2, 3, 4):  # reference: bins (k*pool .. k*pool + pool - 1) averaged, by a loop
        ref = torch.stack(
            [x[..., k * pool : (k + 1) * pool].mean(-1) for k in range(12 // pool)], dim=-1
        )
        torch.testing.assert_close(pool_bins(x, pool), ref)
    assert pool_bins(x, 1) is x
    with pytest.raises(ValueError, match="12 bins cannot be pooled in groups of 5"):
        pool_bins(x, 5)


def test_pooled_encoder_is_a_narrower_encoder_on_pooled_input():
    """An 80-bin encoder with freq_pool 2 computes what a 40-bin encoder with the same weights
    computes on the averaged bin pairs: the pooling comes first, before the normalisation."""
    cfg = {"base": "tiny", "input_norm": "utterance"}
    torch.manual_seed(0)
    pooled = build_encoder({**cfg, "freq_pool": 2}, num_features=80).eval()
    narrow = build_encoder(cfg, num_features=40).eval()
    narrow.load_state_dict(pooled.state_dict())  # same parameter shapes: the front end sees 40
    x = torch.randn(2, 90, 80) * 3.0 + 5.0
    lens = torch.tensor([90, 57])
    with torch.no_grad():
        a, a_lens = pooled(x, lens)
        b, b_lens = narrow((x[..., 0::2] + x[..., 1::2]) / 2, lens)
    assert a_lens.tolist() == b_lens.tolist()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert pooled.encoder_embed.in_features == 40
    assert sum(p.numel() for p in pooled.parameters()) < sum(
        p.numel() for p in build_encoder(cfg).parameters()
    )  # the front end's output projection shrinks with the bins


def test_freq_pool_validation():
    assert get_config("tiny").freq_pool == 1
    with pytest.raises(ValueError, match="freq_pool must be >= 1"):
        get_config({"base": "tiny", "freq_pool": 0})
    with pytest.raises(ValueError, match="freq_pool=3 does not divide the 80 fbank bins"):
        build_encoder({"base": "tiny", "freq_pool": 3})
