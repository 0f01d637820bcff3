"""Backend selection, the --rnnt-backend flag, and dispatch to an external package."""

from __future__ import annotations

import argparse
import sys
import types

import pytest
import torch

import gmot.transducer as T
from gmot.transducer import (
    add_rnnt_backend_argument,
    available_rnnt_backends,
    backend_available,
    get_rnnt_backend,
    k2_available,
    set_rnnt_backend,
)
from gmot.transducer import backend as backend_mod
from gmot.transducer import losses as builtin_losses
from gmot.transducer import pruning as builtin_pruning
from gmot.transducer.recursion import mutual_information_recursion_builtin

EXTERNAL = [n for n in ("k2", "fast_rnnt") if backend_available(n)]


def test_auto_resolves_and_flag_parses(monkeypatch):
    monkeypatch.delenv(backend_mod.ENV_VAR, raising=False)
    set_rnnt_backend("auto")
    want = "k2" if k2_available() else "fast_rnnt" if backend_available("fast_rnnt") else "builtin"
    assert get_rnnt_backend() == want
    parser = add_rnnt_backend_argument(argparse.ArgumentParser())
    assert parser.parse_args([]).rnnt_backend == "auto"
    assert parser.parse_args(["--rnnt-backend", "builtin"]).rnnt_backend == "builtin"
    assert parser.parse_args(["--rnnt-backend", "fast_rnnt"]).rnnt_backend == "fast_rnnt"
    with pytest.raises(SystemExit):
        parser.parse_args(["--rnnt-backend", "cuda"])


def test_environment_variable_chooses_and_the_flag_wins(monkeypatch):
    """GMOT_RNNT_BACKEND picks the backend when code has not chosen; the --rnnt-backend flag's
    default is the variable, so an explicit flag wins and an absent flag keeps it."""
    monkeypatch.setenv(backend_mod.ENV_VAR, "builtin")
    set_rnnt_backend(None)
    try:
        assert get_rnnt_backend() == "builtin"
        parser = add_rnnt_backend_argument(argparse.ArgumentParser())
        assert parser.parse_args([]).rnnt_backend == "builtin"
        assert parser.parse_args(["--rnnt-backend", "auto"]).rnnt_backend == "auto"
        set_rnnt_backend("auto")  # code (the flag) wins over the environment
        want = EXTERNAL[0] if EXTERNAL else "builtin"
        assert get_rnnt_backend() == want
        set_rnnt_backend(None)
        assert get_rnnt_backend() == "builtin"
        monkeypatch.setenv(backend_mod.ENV_VAR, "cuda")
        with pytest.raises(ValueError, match="GMOT_RNNT_BACKEND"):
            get_rnnt_backend()
        with pytest.raises(ValueError, match="GMOT_RNNT_BACKEND"):
            add_rnnt_backend_argument(argparse.ArgumentParser())
        missing = [n for n in ("k2", "fast_rnnt") if n not in EXTERNAL]
        if missing:
            monkeypatch.setenv(backend_mod.ENV_VAR, missing[0])
            with pytest.raises(ImportError, match=missing[0]):
                get_rnnt_backend()
        monkeypatch.setenv(backend_mod.ENV_VAR, "")
        assert get_rnnt_backend() == (EXTERNAL[0] if EXTERNAL else "builtin")
    finally:
        set_rnnt_backend(None)


def test_set_backend_errors():
    with pytest.raises(ValueError, match="rnnt backend"):
        set_rnnt_backend("fast")
    set_rnnt_backend("builtin")
    assert get_rnnt_backend() == "builtin"
    set_rnnt_backend("auto")
    assert "builtin" in available_rnnt_backends()


@pytest.mark.skipif(k2_available(), reason="k2 is importable here")
def test_k2_requested_without_k2():
    set_rnnt_backend("builtin")
    with pytest.raises(ImportError, match="k2"):
        set_rnnt_backend("k2")
    assert get_rnnt_backend() == "builtin"  # a failed request leaves the choice unchanged
    set_rnnt_backend("auto")


@pytest.mark.skipif(backend_available("fast_rnnt"), reason="fast_rnnt is importable here")
def test_fast_rnnt_requested_without_it():
    with pytest.raises(ImportError, match="fast_rnnt"):
        set_rnnt_backend("fast_rnnt")


class _Recorder(types.ModuleType):
    """A stand-in external package: k2's function and argument names,
    running the builtin code and recording which function ran."""

    def __init__(self, with_cuda: bool) -> None:
        super().__init__("fake_rnnt")
        self.with_cuda = with_cuda
        self.calls: list[str] = []

    def _record(self, name: str, result):
        self.calls.append(name)
        return result

    def mutual_information_recursion(self, px, py, boundary, return_grad):
        out = mutual_information_recursion_builtin(px, py, boundary, return_grad)
        return self._record("mutual_information_recursion", out)

    def rnnt_loss_simple(self, lm, am, symbols, termination_symbol, **kw):
        out = builtin_losses.rnnt_loss_simple(lm, am, symbols, termination_symbol, **kw)
        return self._record("rnnt_loss_simple", out)

    def rnnt_loss_smoothed(self, lm, am, symbols, termination_symbol, **kw):
        out = builtin_losses.rnnt_loss_smoothed(lm, am, symbols, termination_symbol, **kw)
        return self._record("rnnt_loss_smoothed", out)

    def get_rnnt_prune_ranges(self, px_grad, py_grad, boundary, s_range):
        out = builtin_pruning.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)
        return self._record("get_rnnt_prune_ranges", out)

    def do_rnnt_pruning(self, am, lm, ranges):
        return self._record("do_rnnt_pruning", builtin_pruning.do_rnnt_pruning(am, lm, ranges))

    def rnnt_loss_pruned(self, logits, symbols, ranges, termination_symbol, **kw):
        out = builtin_losses.rnnt_loss_pruned(logits, symbols, ranges, termination_symbol, **kw)
        return self._record("rnnt_loss_pruned", out)

    def rnnt_loss(self, logits, symbols, termination_symbol, **kw):
        out = builtin_losses.rnnt_loss(logits, symbols, termination_symbol, **kw)
        return self._record("rnnt_loss", out)


def _pipeline(B=2, T_=12, S=4, C=6):
    """Every public function once, in the order the pruned recipe calls them."""
    g = torch.Generator().manual_seed(3)
    am = torch.randn(B, T_, C, generator=g, dtype=torch.float64)
    lm = torch.randn(B, S + 1, C, generator=g, dtype=torch.float64)
    symbols = torch.randint(1, C, (B, S), generator=g)
    boundary = torch.tensor([[0, 0, S, T_], [0, 0, S - 1, T_ - 2]])
    simple, (gx, gy) = T.rnnt_loss_smoothed(
        lm, am, symbols, 0, boundary=boundary, reduction="none", return_grad=True
    )
    T.rnnt_loss_simple(lm, am, symbols, 0, boundary=boundary, reduction="none")
    ranges = T.get_rnnt_prune_ranges(gx, gy, boundary, 3)
    am_p, lm_p = T.do_rnnt_pruning(am, lm, ranges)
    pruned = T.rnnt_loss_pruned(am_p + lm_p, symbols, ranges, 0, boundary=boundary)
    full = T.rnnt_loss(am.unsqueeze(2) + lm.unsqueeze(1), symbols, 0, boundary=boundary)
    px = torch.randn(B, S, T_ + 1, generator=g, dtype=torch.float64)
    py = torch.randn(B, S + 1, T_, generator=g, dtype=torch.float64)
    T.mutual_information_recursion(px, py)
    return simple, pruned, full


ALL_FUNCS = {
    "rnnt_loss_smoothed",
    "rnnt_loss_simple",
    "get_rnnt_prune_ranges",
    "do_rnnt_pruning",
    "rnnt_loss_pruned",
    "rnnt_loss",
    "mutual_information_recursion",
}


def test_every_function_dispatches_to_the_selected_package(monkeypatch):
    fake = _Recorder(with_cuda=True)
    monkeypatch.setitem(backend_mod._modules, "fast_rnnt", fake)
    monkeypatch.setitem(backend_mod._modules, "k2", None)
    try:
        set_rnnt_backend("auto")
        assert get_rnnt_backend() == "fast_rnnt"  # k2 absent: auto takes the next package
        assert available_rnnt_backends() == ["builtin", "fast_rnnt"]
        via_fake = _pipeline()
        assert set(fake.calls) == ALL_FUNCS
        fake.calls.clear()
        set_rnnt_backend("builtin")
        via_builtin = _pipeline()
        assert fake.calls == []  # builtin never touches the package
    finally:
        set_rnnt_backend("auto")
    for a, b in zip(via_fake, via_builtin):
        torch.testing.assert_close(a, b)


def test_package_without_cuda(monkeypatch):
    fake = _Recorder(with_cuda=False)
    fake.with_cuda = lambda: False  # fast_rnnt's spelling: a function
    monkeypatch.setitem(backend_mod._modules, "fast_rnnt", fake)
    monkeypatch.setitem(backend_mod._modules, "k2", None)
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    try:
        assert T.backend_runs_on("fast_rnnt", cpu) and not T.backend_runs_on("fast_rnnt", cuda)
        assert T.backend_runs_on("builtin", cuda)
        set_rnnt_backend("auto")
        assert backend_mod.external_rnnt_module(cpu) is fake
        monkeypatch.setattr(backend_mod, "_warned_no_cuda", set())
        with pytest.warns(UserWarning, match="fast_rnnt was built without CUDA"):
            assert backend_mod.external_rnnt_module(cuda) is None  # auto: builtin on the GPU
        assert backend_mod.external_rnnt_module(cuda) is None  # warned once, not per call
        set_rnnt_backend("fast_rnnt")
        assert backend_mod.external_rnnt_module(cpu) is fake
        with pytest.raises(RuntimeError, match="'fast_rnnt' was built without CUDA"):
            backend_mod.external_rnnt_module(cuda)
        set_rnnt_backend("builtin")
        assert backend_mod.external_rnnt_module(cuda) is None
    finally:
        set_rnnt_backend("auto")
    assert backend_mod.module_has_cuda(types.ModuleType("no_flag"))
    fake.with_cuda = True  # k2's spelling: a bool
    assert backend_mod.module_has_cuda(fake)


def test_old_or_incomplete_package_is_refused(monkeypatch):
    """A k2 from before rnnt_type (it had ``modified: bool``) must not be picked by auto, and
    forcing it names the reason, instead of a TypeError in the middle of training."""

    def rnnt_loss_simple(lm, am, symbols, termination_symbol, boundary=None, modified=False):
        raise AssertionError("must not be called")

    old = types.ModuleType("fast_rnnt")
    for fn in ALL_FUNCS:
        setattr(old, fn, _Recorder(with_cuda=True).__getattribute__(fn))
    old.rnnt_loss_simple = rnnt_loss_simple
    assert "no rnnt_type argument" in backend_mod.api_mismatch(old)
    partial = _Recorder(with_cuda=True)
    assert backend_mod.api_mismatch(partial) is None
    monkeypatch.setattr(_Recorder, "do_rnnt_pruning", None)
    assert "has no do_rnnt_pruning()" in backend_mod.api_mismatch(partial)

    monkeypatch.setattr(backend_mod, "_modules", {"k2": None})
    monkeypatch.setattr(backend_mod, "_unusable", {})
    monkeypatch.setitem(sys.modules, "fast_rnnt", old)
    try:
        with pytest.warns(UserWarning, match="'fast_rnnt' not used: .*rnnt_type"):
            assert get_rnnt_backend() == "builtin"  # auto skips it
        with pytest.raises(ImportError, match="'fast_rnnt' requested but not usable: .*rnnt_type"):
            set_rnnt_backend("fast_rnnt")
    finally:
        set_rnnt_backend("auto")


@pytest.mark.skipif(not EXTERNAL, reason="neither k2 nor fast_rnnt importable")
@pytest.mark.parametrize("name", EXTERNAL)
@pytest.mark.parametrize("rnnt_type", ["regular", "modified", "constrained"])
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_external_and_builtin_side_by_side(name, rnnt_type, device):
    """k2's own code (or fast_rnnt's) and ours on the same problems: losses, occupation grads,
    prune ranges. On CUDA this sets k2's CUDA kernels against our Triton kernels."""
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
    if device == "cuda":
        if not T.backend_runs_on(name, torch.device(device)):
            pytest.skip(f"{name} was built without CUDA")
        am, lm, symbols, boundary = (x.cuda() for x in (am, lm, symbols, boundary))
    out = {}
    for which in (name, "builtin"):
        set_rnnt_backend(which)
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
        logits = am.unsqueeze(2) + lm[torch.arange(B, device=device).view(B, 1, 1), ranges]
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
        out[which] = (simple, gx, gy, ranges, pruned, full)
    set_rnnt_backend("auto")
    for a, b in zip(out[name], out["builtin"]):
        torch.testing.assert_close(a, b)
