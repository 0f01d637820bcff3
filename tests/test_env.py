"""The environment the README creates imports what gmot needs, and env_info reports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gmot

REPO = Path(__file__).resolve().parent.parent


def test_env_info_reports_every_dependency():
    info = gmot.env_info()
    keys = ("python", "torch", "torchaudio", "lhotse", "transformers", "pot", "k2", "fast_rnnt")
    for key in (*keys, "rnnt_backend", "gmot_git"):
        assert key in info, f"env_info() lacks {key!r}: {sorted(info)}"
    import lhotse
    import ot
    import torch

    assert info["torch"] == torch.__version__
    assert info["lhotse"] == lhotse.__version__
    assert info["pot"] == ot.__version__
    # k2 is optional: either a version or the words "not installed", never an exception.
    try:
        import k2  # noqa: F401
    except ImportError:
        assert info["k2"] == "not installed"
    from gmot.transducer import get_rnnt_backend

    assert info["rnnt_backend"] == get_rnnt_backend()
    text = gmot.format_env_info(info)
    assert "torch" in text and info["torch"] in text


def test_version_falls_back_to_the_distribution(monkeypatch):
    """A module without __version__: the installed distribution's version is reported."""
    import importlib.metadata
    import types

    from gmot.env import _version_of

    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))  # no __version__
    assert _version_of("tqdm") == importlib.metadata.version("tqdm")
    monkeypatch.setitem(sys.modules, "gmot_no_such_dist", types.ModuleType("gmot_no_such_dist"))
    assert _version_of("gmot_no_such_dist") == "unknown"


def test_git_revision_is_a_sha_inside_the_checkout(tmp_path):
    from gmot.env import git_revision

    rev = git_revision(REPO)
    if (REPO / ".git").exists():
        sha = rev.removesuffix("-dirty")
        assert len(sha) == 40 and all(c in "0123456789abcdef" for c in sha), rev
    assert git_revision(tmp_path) == "unknown"


def test_torch_and_torchaudio_load_together():
    """torchaudio's compiled extension must load beside this torch build (the README's choice)."""
    import torch
    import torchaudio.functional as F

    logits = torch.randn(1, 4, 3, 5)
    targets = torch.tensor([[1, 2]], dtype=torch.int32)
    loss = F.rnnt_loss(
        logits, targets, torch.tensor([4], dtype=torch.int32), torch.tensor([2], dtype=torch.int32)
    )
    assert torch.isfinite(loss)


def test_transformers_imports_bert_with_torchaudio_installed():
    """transformers imports torchaudio when present; a mismatched pair breaks BertModel."""
    from transformers import BertConfig, BertModel

    cfg = BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
    )
    model = BertModel(cfg).eval()
    import torch

    out = model(input_ids=torch.tensor([[2, 5, 7, 3]]))
    assert out.last_hidden_state.shape == (1, 4, 16)


def test_pot_batch_module_is_available():
    import ot.batch

    assert callable(ot.batch.solve_gromov_batch)


def test_env_module_runs_as_a_script():
    out = subprocess.run(
        [sys.executable, "-m", "gmot.env"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "torch" in out and "gmot_git" in out
