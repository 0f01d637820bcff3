"""Backend selection and the --rnnt-backend flag."""

from __future__ import annotations

import argparse

import pytest

from gmot.transducer import (
    add_rnnt_backend_argument,
    available_rnnt_backends,
    get_rnnt_backend,
    k2_available,
    set_rnnt_backend,
)


def test_auto_resolves_and_flag_parses():
    set_rnnt_backend("auto")
    assert get_rnnt_backend() == ("k2" if k2_available() else "builtin")
    parser = add_rnnt_backend_argument(argparse.ArgumentParser())
    assert parser.parse_args([]).rnnt_backend == "auto"
    assert parser.parse_args(["--rnnt-backend", "builtin"]).rnnt_backend == "builtin"
    with pytest.raises(SystemExit):
        parser.parse_args(["--rnnt-backend", "cuda"])


def test_set_backend_errors():
    with pytest.raises(ValueError, match="rnnt backend"):
        set_rnnt_backend("fast")
    set_rnnt_backend("builtin")
    assert get_rnnt_backend() == "builtin"
    set_rnnt_backend("auto")
    assert "builtin" in available_rnnt_backends()


@pytest.mark.skipif(k2_available(), reason="k2 is importable here")
def test_k2_requested_without_k2():
    with pytest.raises(ImportError, match="k2"):
        set_rnnt_backend("k2")
    assert get_rnnt_backend() == "builtin"


@pytest.mark.skipif(not k2_available(), reason="k2 not importable")
@pytest.mark.parametrize("rnnt_type", ["regular", "modified", "constrained"])
def test_k2_and_builtin_side_by_side(rnnt_type):
    import torch

    from gmot.transducer import (
        get_rnnt_prune_ranges,
        rnnt_loss,
        rnnt_loss_pruned,
        rnnt_loss_smoothed,
    )

    g = torch.Generator().manual_seed(0)
    B, T, S, C = 3, 40, 10, 8
    am = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    boundary = torch.tensor([[0, 0, 10, 40], [0, 0, 7, 33], [0, 0, 10, 25]])
    out = {}
    for name in ("k2", "builtin"):
        set_rnnt_backend(name)
        simple, (gx, gy) = rnnt_loss_smoothed(
            lm,
            am,
            symbols,
            0,
            0.25,
            0.0,
            boundary=boundary,
            rnnt_type=rnnt_type,
            reduction="none",
            return_grad=True,
        )
        ranges = get_rnnt_prune_ranges(gx, gy, boundary, 4)
        logits = am.unsqueeze(2) + lm[torch.arange(B).view(B, 1, 1), ranges]
        pruned = rnnt_loss_pruned(
            logits, symbols, ranges, 0, boundary=boundary, rnnt_type=rnnt_type, reduction="none"
        )
        full = rnnt_loss(
            am.unsqueeze(2) + lm.unsqueeze(1),
            symbols,
            0,
            boundary=boundary,
            rnnt_type=rnnt_type,
            reduction="none",
        )
        out[name] = (simple, gx, gy, ranges, pruned, full)
    set_rnnt_backend("auto")
    for a, b in zip(out["k2"], out["builtin"]):
        torch.testing.assert_close(a, b)
