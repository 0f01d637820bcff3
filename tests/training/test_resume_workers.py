"""A ``--start-batch`` resume with DataLoader workers trains exactly the batches an
uninterrupted run trains (issue 21, point 1): the recipe's train.py on a tiny lhotse corpus
with the real data module and ``--num-workers 2``, SIGKILLed before global batch 8 with
checkpoints every 3 batches, resumed from checkpoint-6.pt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from make_cuts import make_corpus  # noqa: E402
from test_train_e2e import _single_process_env  # noqa: E402

SCRIPT = HERE / "record_batches_script.py"


def _command(exp: Path, corpus: dict, *extra: str) -> list[str]:
    return [
        sys.executable, str(SCRIPT),
        "--encoder-config", "tiny", "--decoder-dim", "16", "--joiner-dim", "16",
        "--gmot-loss-scale", "0", "--exp-dir", str(exp), "--lang-dir", str(corpus["lang"]),
        "--train-cuts", str(corpus["train"]), "--valid-cuts", str(corpus["dev"]),
        "--num-epochs", "2", "--save-every-n", "3", "--valid-interval", "4",
        "--log-interval", "1", "--average-period", "1", "--tensorboard", "0",
        "--max-duration", "1.3", "--num-workers", "2", "--bucketing-sampler", "1",
        "--num-buckets", "2", "--drop-last", "0", "--min-utt-duration", "0.5",
        "--enable-spec-aug", "1", "--seed", "5", *extra,
    ]  # fmt: skip


def _train(exp: Path, corpus: dict, *extra: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    env = dict(_single_process_env(), KILL_AT_BATCH=str(kill_at))
    return subprocess.run(
        _command(exp, corpus, *extra),
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=exp.parent,
    )


def _batches(exp: Path) -> list[tuple[int, str]]:
    lines = (exp / "batches.txt").read_text(encoding="utf-8").splitlines()
    return [(int(ln.split(" ", 1)[0]), ln.split(" ", 1)[1]) for ln in lines]


@pytest.mark.slow
def test_sigkill_with_workers_then_start_batch_resume_is_exact(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_train=12, n_dev=2)
    ref = tmp_path / "ref"
    r = _train(ref, corpus)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    expected = _batches(ref)
    assert len(expected) >= 16, expected  # two epochs of several batches each

    run = tmp_path / "run"
    r = _train(run, corpus, kill_at=8)
    assert r.returncode == -9, r.stdout[-3000:] + r.stderr[-3000:]
    assert sorted(int(p.stem.split("-")[1]) for p in run.glob("checkpoint-*.pt")) == [3, 6]
    first = [x for x in _batches(run) if x[0] <= 6]  # batch 7 was trained but not saved
    (run / "batches.txt").unlink()
    r = _train(run, corpus, "--start-batch", "6")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert first + _batches(run) == expected

    # and the training itself is the same: RNG, sampler, optimiser, averaged model
    from gmot.checkpoint import load_checkpoint

    a, b = load_checkpoint(ref / "epoch-2.pt"), load_checkpoint(run / "epoch-2.pt")
    assert a["params"]["batch_idx_train"] == b["params"]["batch_idx_train"]
    for key in ("model", "model_avg"):
        for k, v in a[key].items():
            if torch.is_floating_point(v):
                torch.testing.assert_close(b[key][k], v, rtol=0, atol=0, msg=f"{key}.{k}")
    assert a["run_id"] != b["run_id"]  # two runs; the resumed one kept its own
    assert b["run_id"] == load_checkpoint(run / "checkpoint-6.pt")["run_id"]
