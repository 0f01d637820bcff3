"""plot_transport_plan writes a real PNG."""

import warnings

import numpy as np
import pytest
import torch

from gmot.ot import plot_transport_plan


def test_plot_writes_nontrivial_png(tmp_path):
    from matplotlib import image

    plan = torch.zeros(40, 4)
    for i in range(40):
        plan[i, i * 4 // 40] = 1 / 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no glyph-missing warning spam
        out = plot_transport_plan(plan, ["你", "好", "a", "吗"], tmp_path / "sub" / "p.png", "测试")
    assert out == tmp_path / "sub" / "p.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    img = image.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert float(np.std(img[..., :3])) > 0.05  # not a blank canvas


def test_plot_rejects_mismatched_tokens(tmp_path):
    with pytest.raises(ValueError, match="tokens has 2 entries"):
        plot_transport_plan(np.ones((3, 4)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="2-D"):
        plot_transport_plan(np.ones(3), ["a", "b", "c"], tmp_path / "x.png")
