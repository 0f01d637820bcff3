"""All decoding methods on the real AsrModel (tiny Zipformer, every head)."""

import argparse

import pytest
import torch

from gmot.decoding.decode_main import METHODS, decode_batch


@pytest.fixture(scope="module")
def model():
    asr_model = pytest.importorskip("gmot.models.asr_model")
    torch.manual_seed(0)
    return asr_model.build_model(
        {
            "vocab_size": 30,
            "encoder": "tiny",
            "use_ctc": True,
            "use_attention_decoder": True,
            "context_size": 2,
            "decoder_dim": 64,
            "joiner_dim": 64,
        }
    ).eval()


@pytest.mark.parametrize("method", [m for m in METHODS if m != "fast_beam_search"])
def test_every_method_gives_valid_tokens(model, method):
    torch.manual_seed(1)
    x, x_lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    params = argparse.Namespace(
        decoding_method=method, beam_size=3, max_sym_per_frame=2, attention_scale=1.0
    )
    hyps = decode_batch(model, x, x_lens, params)
    assert len(hyps) == 2
    n_frames = ((x_lens - 7) // 2 + 1) // 2
    for h, n in zip(hyps, n_frames.tolist()):
        assert all(isinstance(t, int) and 0 < t < 30 for t in h), h
        assert len(h) <= 3 * n
