"""The front end's activation (``ZipformerConfig.embed_activation``): ReLU instead of Swoosh.

Its streaming test is in test_streaming.py."""

import pytest
import torch
import torch.nn.functional as F

from gmot.models.zipformer import build_encoder
from gmot.models.zipformer.config import get_config
from gmot.models.zipformer.scaling import swoosh_l, swoosh_r


def _front_end_by_hand(embed, x: torch.Tensor, act_r, act_l) -> torch.Tensor:
    """The convolutions and ConvNeXt block of ``embed`` written out with functional ops, eval
    mode (the balancer is the identity there): (B, T, F) -> (B, C, T', F')."""
    c = [m for m in embed.conv if isinstance(m, torch.nn.Conv2d)]
    y = act_r(F.conv2d(x.unsqueeze(1), c[0].weight, c[0].bias, padding=(0, 1)))
    y = act_r(F.conv2d(y, c[1].weight, c[1].bias, stride=2))
    y = act_r(F.conv2d(y, c[2].weight, c[2].bias, stride=(1, 2)))
    cx = embed.convnext
    dw = cx.depthwise
    h = F.conv2d(y, dw.weight, dw.bias, padding=dw.padding, groups=dw.groups)
    h = act_l(F.conv2d(h, cx.pointwise1.weight, cx.pointwise1.bias))
    return y + F.conv2d(h, cx.pointwise2.weight, cx.pointwise2.bias)


@pytest.mark.parametrize(
    "activation, act_r, act_l", [("swoosh", swoosh_r, swoosh_l), ("relu", F.relu, F.relu)]
)
def test_front_end_applies_the_configured_activation(activation, act_r, act_l):
    torch.manual_seed(0)
    embed = build_encoder({"base": "tiny", "embed_activation": activation}).eval().encoder_embed
    with torch.no_grad():  # weights large enough that the activations' shapes matter
        for p in embed.parameters():
            p.normal_(0.0, 0.5)
    x = torch.randn(2, 40, 80)
    lens = torch.tensor([40, 40])
    with torch.no_grad():
        ref = _front_end_by_hand(embed, x, act_r, act_l)
        y = embed.conv(x.unsqueeze(1))
        got = embed.convnext(y)
        out, out_lens = embed(x, lens)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    assert out.shape == (2, 16, embed.out.out_features) and out_lens.tolist() == [16, 16]


def test_relu_front_end_differs_and_trains():
    """Same weights, other activation: other outputs; gradients reach the first convolution."""
    torch.manual_seed(0)
    sw = build_encoder({"base": "tiny"}).train()
    torch.manual_seed(0)
    re = build_encoder({"base": "tiny", "embed_activation": "relu"}).train()
    assert [n for n, _ in sw.named_parameters()] == [n for n, _ in re.named_parameters()]
    re.load_state_dict(sw.state_dict())
    x = torch.randn(2, 60, 80)
    lens = torch.tensor([60, 44])
    re.eval(), sw.eval()
    with torch.no_grad():
        assert not torch.allclose(re(x, lens)[0], sw(x, lens)[0], atol=1e-3)
    re.train()
    out, _ = re(x, lens)
    out.pow(2).sum().backward()
    g = re.encoder_embed.conv[0].weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_embed_activation_validation():
    assert get_config("tiny").embed_activation == "swoosh"
    with pytest.raises(ValueError, match="embed_activation must be one of"):
        get_config({"base": "tiny", "embed_activation": "gelu"})
