"""Stateless decoder and joiner: shapes, parameter-count formulas, hand-computed outputs."""

from __future__ import annotations

import pytest
import torch

from gmot.transducer import Decoder, Joiner


@pytest.mark.parametrize("context_size", [1, 2, 3])
def test_decoder_param_count_and_shapes(context_size):
    V, d = 50, 16
    dec = Decoder(V, d, blank_id=0, context_size=context_size)
    n = sum(p.numel() for p in dec.parameters())
    conv = d * (d // (d // 4)) * context_size if context_size > 1 else 0  # weight (d, d/groups, k)
    assert n == V * d + conv == Decoder.num_params(V, d, context_size)
    y = torch.randint(0, V, (3, 7))
    out = dec(y)
    assert out.shape == (3, 7, d)
    assert (out >= 0).all()  # ReLU
    assert dec.blank_id == 0 and dec.context_size == context_size and dec.vocab_size == V


def test_decoder_matches_hand_computation():
    torch.manual_seed(0)
    V, d, k = 10, 8, 2
    dec = Decoder(V, d, blank_id=0, context_size=k)
    y = torch.tensor([[3, 5, 7]])
    out = dec(y)
    emb = dec.embedding.weight
    w = dec.conv.weight  # (d, 4, k), groups = d // 4 = 2 (4 input channels per group)
    padded = [torch.zeros(d)] + [emb[i] for i in y[0].tolist()]  # need_pad: zeros on the left
    for u in range(3):
        window = torch.stack(padded[u : u + k], 1)  # (d, k)
        expect = torch.empty(d)
        for o in range(d):
            grp = o // 4
            expect[o] = (w[o] * window[grp * 4 : grp * 4 + 4]).sum()
        torch.testing.assert_close(out[0, u], expect.relu())
    # need_pad=False on the last k symbols gives the last padded output
    torch.testing.assert_close(dec(y[:, -k:], need_pad=False)[:, 0], out[:, -1])


def test_decoder_bad_input():
    dec = Decoder(10, 8, 0, 2)
    with pytest.raises(ValueError, match="y"):
        dec(torch.tensor([[10]]))
    with pytest.raises(TypeError, match="y"):
        dec(torch.tensor([[1]], dtype=torch.int32))
    with pytest.raises(ValueError, match="decoder_dim"):
        Decoder(10, 6, 0, 2)


def test_joiner_param_count_and_values():
    E, D, J, V = 12, 8, 16, 30
    j = Joiner(E, D, J, V)
    n = sum(p.numel() for p in j.parameters())
    assert n == (E + 1) * J + (D + 1) * J + (J + 1) * V == Joiner.num_params(E, D, J, V)
    e = torch.randn(2, 5, 1, E)
    dd = torch.randn(2, 1, 4, D)
    out = j(e, dd)
    assert out.shape == (2, 5, 4, V)
    h = torch.tanh(
        e @ j.encoder_proj.weight.T
        + j.encoder_proj.bias
        + dd @ j.decoder_proj.weight.T
        + j.decoder_proj.bias
    )
    torch.testing.assert_close(out, h @ j.output_linear.weight.T + j.output_linear.bias)
    # project_input=False takes already projected inputs
    out2 = j(j.encoder_proj(e), j.decoder_proj(dd), project_input=False)
    torch.testing.assert_close(out2, out)
    with pytest.raises(ValueError, match="encoder_out"):
        j(e, dd, project_input=False)
