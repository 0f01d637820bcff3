"""Shared pytest configuration: deterministic seeds, GPU skipping, offline hub."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

# This clone's gmot, in this process and in every subprocess a test starts (whatever its cwd):
# the shared venv holds no gmot (tools/setup_env.sh), so nothing else could supply it.
ROOT = str(Path(__file__).resolve().parents[1])
sys.path.insert(0, ROOT)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)

# Tests never touch the network: make transformers / huggingface_hub fail fast if asked to.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when no CUDA device is visible."""
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (none visible)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    """Every test starts from the same random state (python, numpy, torch)."""
    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_hsk(tmp_path_factory):
    """A 24-utterance synthetic corpus (20 train / 2 dev / 2 test) in AISHELL layout (used by
    tests/corpora and, as a small real corpus, by tests/data)."""
    from gmot.corpora.hsk import synthesize_corpus

    root = tmp_path_factory.mktemp("hsk")
    counts = synthesize_corpus(
        root, num_train=20, num_dev=2, num_test=2, utts_per_speaker=5, max_level=1, seed=3
    )
    return root, counts
