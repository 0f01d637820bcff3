import argparse

import pytest
import torch
from torch import nn

import gmot.decoding.model_loading as ml


def _touch(d, names):
    for n in names:
        (d / n).write_bytes(b"")


def test_resolve_epoch_modes(tmp_path):
    _touch(tmp_path, [f"epoch-{i}.pt" for i in range(1, 11)])
    mode, paths, suffix = ml.resolve_checkpoints(tmp_path, 10, 1, use_averaged_model=False)
    assert (mode, [p.name for p in paths], suffix) == ("single", ["epoch-10.pt"], "epoch-10-avg-1")
    mode, paths, suffix = ml.resolve_checkpoints(tmp_path, 10, 3, use_averaged_model=False)
    assert mode == "average"
    assert [p.name for p in paths] == ["epoch-8.pt", "epoch-9.pt", "epoch-10.pt"]
    mode, paths, suffix = ml.resolve_checkpoints(tmp_path, 10, 4, use_averaged_model=True)
    assert mode == "averaged_model"
    assert [p.name for p in paths] == ["epoch-6.pt", "epoch-10.pt"]
    assert suffix == "epoch-10-avg-4-use-averaged-model"


def test_resolve_errors(tmp_path):
    _touch(tmp_path, ["epoch-1.pt", "epoch-2.pt"])
    with pytest.raises(ValueError, match="--epoch > --avg"):
        ml.resolve_checkpoints(tmp_path, 2, 2, use_averaged_model=True)
    with pytest.raises(FileNotFoundError, match="epoch-3.pt"):
        ml.resolve_checkpoints(tmp_path, 3, 1, use_averaged_model=False)
    with pytest.raises(ValueError, match="--avg"):
        ml.resolve_checkpoints(tmp_path, 2, 0)


def test_resolve_iter(tmp_path):
    _touch(tmp_path, [f"checkpoint-{n}.pt" for n in (100, 200, 300, 400)] + ["checkpoint-x.pt"])
    assert [p.name for p in ml.find_iter_checkpoints(tmp_path, 350)] == [
        "checkpoint-300.pt",
        "checkpoint-200.pt",
        "checkpoint-100.pt",
    ]
    mode, paths, suffix = ml.resolve_checkpoints(tmp_path, 0, 2, iter_=400, use_averaged_model=True)
    assert (mode, [p.name for p in paths]) == (
        "averaged_model",
        ["checkpoint-200.pt", "checkpoint-400.pt"],
    )
    assert suffix == "iter-400-avg-2-use-averaged-model"
    mode, paths, _ = ml.resolve_checkpoints(tmp_path, 0, 2, iter_=400, use_averaged_model=False)
    assert [p.name for p in paths] == ["checkpoint-400.pt", "checkpoint-300.pt"]
    with pytest.raises(FileNotFoundError, match="needs 4"):
        ml.resolve_checkpoints(tmp_path, 0, 3, iter_=300, use_averaged_model=True)


def test_load_model_wiring(tmp_path, monkeypatch):
    """Plain averaging builds the model from model_config and loads the averaged weights."""
    for e in (1, 2, 3):
        torch.save(
            {"model": {"w": torch.full((2,), float(e))}, "model_config": {"dim": 2}},
            tmp_path / f"epoch-{e}.pt",
        )
    calls = {}

    def build_model(cfg):
        calls["cfg"] = cfg
        m = nn.Module()
        m.w = nn.Parameter(torch.zeros(cfg["dim"]))
        m.model_config = cfg
        return m

    def average(paths):
        calls["avg"] = [p.name for p in paths]
        return {"w": sum(torch.load(p)["model"]["w"] for p in paths) / len(paths)}

    def average_with_model(start, end):
        calls["avg_model"] = (start.name, end.name)
        return {"w": torch.full((2,), -1.0)}

    monkeypatch.setattr(ml, "build_model", build_model)
    monkeypatch.setattr(ml, "load_checkpoint", lambda p, map_location="cpu": torch.load(p))
    monkeypatch.setattr(ml, "average_checkpoints", average)
    monkeypatch.setattr(ml, "average_checkpoints_with_averaged_model", average_with_model)
    args = argparse.Namespace(
        checkpoint=None, exp_dir=tmp_path, epoch=3, avg=2, iter=0, use_averaged_model=False
    )
    model, cfg, suffix = ml.load_model(args)
    assert calls["avg"] == ["epoch-2.pt", "epoch-3.pt"] and cfg == {"dim": 2}
    assert torch.equal(model.w.detach(), torch.full((2,), 2.5)) and not model.training
    args.use_averaged_model = True
    model, _, suffix = ml.load_model(args)
    assert calls["avg_model"] == ("epoch-1.pt", "epoch-3.pt")
    assert torch.equal(model.w.detach(), torch.full((2,), -1.0))
    args.checkpoint = tmp_path / "epoch-1.pt"
    model, _, _ = ml.load_model(args)
    assert torch.equal(model.w.detach(), torch.full((2,), 1.0))


def test_load_model_with_training_checkpoints(tmp_path, monkeypatch):
    """Real gmot.checkpoint files and averaging (the network builder is stubbed)."""
    from gmot import checkpoint as ckpt_mod

    class Net(nn.Module):
        def __init__(self, value=0.0):
            super().__init__()
            self.w = nn.Parameter(torch.full((3,), float(value)))
            self.model_config = {"kind": "net"}

    # epoch e: model weights e; running average over batches 1..10e of a model that was
    # equal to e' during epoch e' -> avg_e = mean over epochs 1..e = (e + 1) / 2
    for e in (1, 2, 3, 4):
        ckpt_mod.save_checkpoint(
            tmp_path / f"epoch-{e}.pt",
            model=Net(e),
            model_avg=Net((e + 1) / 2),
            params={"batch_idx_train": 10 * e},
            model_config={"kind": "net"},
        )
    monkeypatch.setattr(ml, "build_model", lambda cfg: Net())
    args = argparse.Namespace(
        checkpoint=None, exp_dir=tmp_path, epoch=4, avg=2, iter=0, use_averaged_model=True
    )
    model, cfg, suffix = ml.load_model(args)
    # mean of the model over epochs 3 and 4 = 3.5
    assert torch.allclose(model.w.detach(), torch.full((3,), 3.5))
    assert cfg == {"kind": "net"} and suffix == "epoch-4-avg-2-use-averaged-model"
    args.use_averaged_model = False
    args.avg = 3
    model, _, _ = ml.load_model(args)
    assert torch.allclose(model.w.detach(), torch.full((3,), 3.0))


def test_load_checkpoint_model_picks_the_averaged_weights(tmp_path, monkeypatch):
    """One training checkpoint: model_avg when present (unless use_average=False), else model."""
    from gmot import checkpoint as ckpt_mod

    class Net(nn.Module):
        def __init__(self, value=0.0):
            super().__init__()
            self.w = nn.Parameter(torch.full((2,), float(value)))
            self.model_config = {"kind": "net"}

    ckpt_mod.save_checkpoint(
        tmp_path / "with-avg.pt",
        model=Net(4),
        model_avg=Net(2.5),
        params={},
        model_config={"kind": "net"},
    )
    ckpt_mod.save_checkpoint(
        tmp_path / "no-avg.pt", model=Net(7), params={}, model_config={"kind": "net"}
    )
    monkeypatch.setattr(ml, "build_model", lambda cfg: Net())
    model, cfg, key = ml.load_checkpoint_model(tmp_path / "with-avg.pt")
    assert key == "model_avg" and cfg == {"kind": "net"} and not model.training
    assert torch.equal(model.w.detach(), torch.full((2,), 2.5))
    model, _, key = ml.load_checkpoint_model(tmp_path / "with-avg.pt", use_average=False)
    assert key == "model" and torch.equal(model.w.detach(), torch.full((2,), 4.0))
    model, _, key = ml.load_checkpoint_model(tmp_path / "no-avg.pt")
    assert key == "model" and torch.equal(model.w.detach(), torch.full((2,), 7.0))
