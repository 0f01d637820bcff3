"""FrequencyWarp: a VTLP-like stretch of log-mel features along frequency."""

import numpy as np
import pytest
import torch

from gmot.data.augment import FrequencyWarp, warp_positions


def test_identity_factor_leaves_features_unchanged():
    torch.manual_seed(0)
    x = torch.randn(3, 20, 80)
    y = FrequencyWarp(0.1)(x, alpha=torch.ones(3))
    torch.testing.assert_close(y, x)


def test_zero_max_warp_is_identity():
    torch.manual_seed(0)
    x = torch.randn(2, 7, 80)
    torch.testing.assert_close(FrequencyWarp(0.0)(x), x)


def test_positions_fix_the_edges_and_increase():
    alpha = torch.tensor([0.9, 1.0, 1.1])
    pos = warp_positions(80, alpha)
    assert pos.shape == (3, 80)
    torch.testing.assert_close(pos[:, 0], torch.zeros(3))
    torch.testing.assert_close(pos[:, -1], torch.full((3,), 79.0))
    assert bool((pos[:, 1:] > pos[:, :-1]).all())
    # below the bend, output bin f reads input bin alpha * f
    torch.testing.assert_close(pos[:, 10], 10 * alpha)


def test_a_peak_moves_as_a_formant_would():
    """A spectral peak at input bin 40 appears at output bin 40 / alpha (numpy's interpolation
    of the same warp is the independent reference for the whole spectrum)."""
    F = 80
    bins = np.arange(F, dtype=np.float64)
    spectrum = np.exp(-0.5 * ((bins - 40) / 2.0) ** 2)  # a Gaussian "formant" at bin 40
    x = torch.tensor(spectrum, dtype=torch.float32).expand(2, 5, F).clone()
    alpha = torch.tensor([0.9, 1.1])
    y = FrequencyWarp(0.1)(x, alpha=alpha)
    for b, a in enumerate(alpha.tolist()):
        peak = int(y[b, 0].argmax())
        assert abs(peak - 40 / a) <= 1, (a, peak)
        src = warp_positions(F, alpha[b : b + 1])[0].double().numpy()
        expected = np.interp(src, bins, spectrum)
        np.testing.assert_allclose(y[b, 3].double().numpy(), expected, atol=1e-6)


def test_padding_stays_constant_and_factors_in_range():
    torch.manual_seed(1)
    x = torch.randn(4, 10, 80)
    x[:, 6:] = -23.0  # padding frames
    warp = FrequencyWarp(0.15)
    alpha = warp.factors(1000)
    assert float(alpha.min()) >= 0.85 and float(alpha.max()) <= 1.15
    assert float(alpha.std()) > 0.05  # spread over the range, not a constant
    y = warp(x)
    torch.testing.assert_close(y[:, 6:], torch.full_like(y[:, 6:], -23.0))
    assert not torch.allclose(y[:, :6], x[:, :6])


def test_probability_zero_draws_identity():
    assert bool((FrequencyWarp(0.2, p=0.0).factors(50) == 1).all())


@pytest.mark.parametrize("bad", [-0.1, 0.5, 1.0])
def test_bad_max_warp_names_the_flag(bad):
    with pytest.raises(ValueError, match="--freq-warp"):
        FrequencyWarp(bad)
