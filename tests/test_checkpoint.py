"""Checkpoints: round trip, atomic save, truncated files, averaging, running averaged model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gmot import checkpoint as ck
from gmot.training.model_avg import make_averaged_model, update_averaged_model


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    return m


def test_round_trip_keys(tmp_path):
    m = _model(0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    p = ck.save_checkpoint(
        tmp_path / "a.pt",
        model=m,
        params={"batch_idx_train": 7},
        optimizer=opt,
        model_config={"x": 1},
    )
    c = ck.load_checkpoint(p)
    for k in ck.CHECKPOINT_KEYS:
        assert k in c
    assert c["params"]["batch_idx_train"] == 7
    assert c["model_config"] == {"x": 1}
    assert "torch" in c["env"]
    for k, v in m.state_dict().items():
        assert torch.equal(c["model"][k], v)


def test_non_zero_rank_does_not_write(tmp_path):
    assert ck.save_checkpoint(tmp_path / "a.pt", model=_model(0), params={}, rank=1) is None
    assert not (tmp_path / "a.pt").exists()


def test_truncated_checkpoint_names_file(tmp_path):
    p = ck.save_checkpoint(tmp_path / "epoch-3.pt", model=_model(0), params={})
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ck.CheckpointError, match="epoch-3.pt"):
        ck.load_checkpoint(p)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ck.load_checkpoint(tmp_path / "nope.pt")


def test_atomic_save_keeps_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "checkpoint-8.pt"
    ck.save_checkpoint(p, model=_model(0), params={"batch_idx_train": 8})
    before = p.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *a, **kw):  # writes half a file, then "gets killed"
        real_save(obj, f, *a, **kw)
        f.seek(0)
        f.truncate(100)
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(p, model=_model(1), params={"batch_idx_train": 9})
    monkeypatch.setattr(torch, "save", real_save)
    assert p.read_bytes() == before
    assert ck.load_checkpoint(p)["params"]["batch_idx_train"] == 8
    assert [q.name for q in tmp_path.iterdir()] == ["checkpoint-8.pt"]  # no temp left


def test_average_checkpoints(tmp_path):
    ms = [_model(s) for s in range(3)]
    paths = [
        ck.save_checkpoint(tmp_path / f"e{i}.pt", model=m, params={}) for i, m in enumerate(ms)
    ]
    avg = ck.average_checkpoints(paths)
    w = (ms[0][0].weight + ms[1][0].weight + ms[2][0].weight) / 3
    torch.testing.assert_close(avg["0.weight"], w.detach())
    # integer buffer (BatchNorm num_batches_tracked) comes from the last file
    assert avg["1.num_batches_tracked"].dtype == torch.int64


def test_running_average_and_averaged_model_difference(tmp_path):
    """model_avg is the mean of the sampled models; the start/end formula recovers the mean of
    the samples in between (hand-computed from the samples)."""
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    avg = make_averaged_model(model)
    period, samples, paths = 2, [], {}
    for n in range(1, 13):
        with torch.no_grad():
            model.weight.add_(torch.randn(2, 2))
        if n % period == 0:
            samples.append(model.weight.detach().clone().double())
            update_averaged_model(avg, model, n, period)
            torch.testing.assert_close(avg.weight, torch.stack(samples).mean(0))
        if n in (4, 12):
            paths[n] = ck.save_checkpoint(
                tmp_path / f"checkpoint-{n}.pt",
                model=model,
                model_avg=avg,
                params={"batch_idx_train": n},
            )
    st = ck.average_checkpoints_with_averaged_model(paths[4], paths[12])
    expect = torch.stack(samples[2:]).mean(0).float()  # samples at n = 6, 8, 10, 12
    torch.testing.assert_close(st["weight"], expect, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="later"):
        ck.average_checkpoints_with_averaged_model(paths[12], paths[4])


def test_old_module_name_is_the_same_module():
    import gmot.checkpoint
    import gmot.training.checkpoint

    assert gmot.training.checkpoint is gmot.checkpoint
