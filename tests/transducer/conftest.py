"""Run backend-sensitive tests once per available backend (builtin, and k2 when importable)."""

from __future__ import annotations

import pytest

from gmot.transducer import available_rnnt_backends, set_rnnt_backend


@pytest.fixture(params=available_rnnt_backends())
def backend(request: pytest.FixtureRequest):
    set_rnnt_backend(request.param)
    yield request.param
    set_rnnt_backend(None)


@pytest.fixture
def builtin_backend():
    set_rnnt_backend("builtin")
    yield "builtin"
    set_rnnt_backend(None)
