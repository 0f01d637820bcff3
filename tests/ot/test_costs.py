"""Cost builders vs brute-force numpy."""

import numpy as np
import pytest
import torch

from gmot.ot.costs import (
    center_features,
    cosine_cost,
    edge_cost,
    gmot_costs,
    lengths_to_mask,
    node_cost,
    relative_position_distance,
    temporal_cost,
)


def _cos_np(x, y):
    out = np.zeros((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            out[i, j] = 1 - x[i] @ y[j] / (np.linalg.norm(x[i]) * np.linalg.norm(y[j]))
    return out


def test_cosine_and_node_cost_match_bruteforce():
    h = torch.randn(2, 5, 4, dtype=torch.float64)
    z = torch.randn(2, 3, 4, dtype=torch.float64)
    c = cosine_cost(h, z)
    for bi in range(2):
        np.testing.assert_allclose(c[bi].numpy(), _cos_np(h[bi].numpy(), z[bi].numpy()), atol=1e-12)
    hm = lengths_to_mask(torch.tensor([5, 2]), 5)
    zm = lengths_to_mask(torch.tensor([3, 1]), 3)
    m = node_cost(h, z, hm, zm)
    assert torch.equal(m[0], c[0])
    np.testing.assert_allclose(m[1, :2, :1].numpy(), c[1, :2, :1].numpy())
    assert float(m[1, 2:].abs().sum() + m[1, :, 1:].abs().sum()) == 0.0


def test_cosine_cost_rejects_mismatched_dims():
    with pytest.raises(ValueError, match="feature sizes"):
        cosine_cost(torch.randn(1, 2, 3), torch.randn(1, 2, 4))


def test_edge_cost_with_position_term():
    x = torch.randn(1, 4, 3, dtype=torch.float64)
    lens = torch.tensor([3])
    w = 0.25
    c = edge_cost(x, lens, position_weight=w)
    cos = _cos_np(x[0, :3].numpy(), x[0, :3].numpy())
    pos = np.abs(np.arange(3)[:, None] - np.arange(3)[None, :]) / 3.0
    np.testing.assert_allclose(c[0, :3, :3].numpy(), (1 - w) * cos + w * pos, atol=1e-12)
    assert float(c[0, 3].abs().sum() + c[0, :, 3].abs().sum()) == 0.0
    assert torch.allclose(c, c.transpose(1, 2))
    r = relative_position_distance(torch.tensor([2, 4]), 4)
    assert r[0, 0, 1] == 0.5 and r[1, 0, 3] == 0.75 and r[0, 0, 3] == 0.0
    with pytest.raises(ValueError, match="position_weight"):
        edge_cost(x, lens, position_weight=1.5)


def test_temporal_cost_hand_formula():
    t = temporal_cost(torch.tensor([4, 2]), torch.tensor([2, 2]), 4, 2, sigma=0.5)
    la, lt = 4.0, 2.0
    i, k = 1, 0
    ell = abs((i + 0.5) / la - (k + 0.5) / lt) / np.sqrt(1 / la**2 + 1 / lt**2)
    assert t[0, i, k].item() == pytest.approx(ell**2 / (2 * 0.25), rel=1e-6)
    # identical lengths: zero on the diagonal, padding zero
    assert float(t[1].diagonal().abs().sum()) == 0.0
    assert float(t[1, 2:].abs().sum()) == 0.0
    # monotone in the distance from the diagonal
    assert t[0, 0, 0] < t[0, 3, 0]
    with pytest.raises(ValueError, match="sigma"):
        temporal_cost(torch.tensor([1]), torch.tensor([1]), 1, 1, sigma=0.0)


def test_gmot_costs_equal_separate_builders():
    h = torch.randn(2, 6, 5, dtype=torch.float64)
    z = torch.randn(2, 4, 5, dtype=torch.float64)
    hl, zl = torch.tensor([6, 3]), torch.tensor([2, 4])
    M, C1, C2 = gmot_costs(h, hl, z, zl, position_weight=0.3)
    hm, zm = lengths_to_mask(hl, 6), lengths_to_mask(zl, 4)
    torch.testing.assert_close(M, node_cost(h, z, hm, zm))
    torch.testing.assert_close(C1, edge_cost(h, hl, 0.3))
    torch.testing.assert_close(C2, edge_cost(z, zl, 0.3))


def test_center_features_removes_batch_mean_over_valid_positions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)) + 7.0
    lens = np.array([5, 2, 3])
    for b, n in enumerate(lens):
        x[b, n:] = 123.0  # padding garbage must not enter the mean
    valid = np.concatenate([x[b, :n] for b, n in enumerate(lens)])
    expected = x - valid.mean(axis=0)
    for b, n in enumerate(lens):
        expected[b, n:] = 0.0
    out = center_features(torch.tensor(x), torch.tensor(lens))
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)
    with pytest.raises(ValueError, match="center_features"):
        center_features(torch.tensor(x[0]), torch.tensor(lens))
