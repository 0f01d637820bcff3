"""ResumableLoader: the sampler state as of the last batch handed out, whatever the number of
DataLoader workers (they draw batches from the sampler ahead of training; issue 21 point 1)."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from make_cuts import make_corpus  # noqa: E402

from gmot.data.datamodule import AsrDataModule  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    return make_corpus(tmp_path_factory.mktemp("corpus"), n_train=10, n_dev=2)


def make_args(corpus: dict, **kw) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    AsrDataModule.add_arguments(p)
    a = p.parse_args(["--lang-dir", str(corpus["lang"]), "--num-buckets", "2"])
    a.min_utt_duration = 0.5
    for k, v in kw.items():
        setattr(a, k, v)
    return a


def _cuts(corpus: dict):
    from lhotse import load_manifest_lazy

    return load_manifest_lazy(corpus["train"])


def _ids(dl) -> list[list[str]]:
    return [b["cut_ids"] for b in dl]


@pytest.mark.parametrize("bucketing", [True, False])
def test_consumed_state_resumes_exactly_with_workers(corpus, bucketing):
    args = make_args(
        corpus, num_workers=2, max_duration=2.5, bucketing_sampler=bucketing, drop_last=False
    )
    dm = AsrDataModule(args)
    full = _ids(dm.train_dataloader(_cuts(corpus)))
    assert len(full) >= 5, full
    k = 2
    dl = dm.train_dataloader(_cuts(corpus))
    it = iter(dl)
    seen = [next(it)["cut_ids"] for _ in range(k)]
    assert seen == full[:k]
    state = dl.consumed_sampler_state()
    ahead = dl.sampler.state_dict()  # what a checkpoint stored before: past the prefetched ones
    del it
    rest = _ids(AsrDataModule(args).train_dataloader(_cuts(corpus), sampler_state_dict=state))
    assert seen + rest == full
    skipped = _ids(AsrDataModule(args).train_dataloader(_cuts(corpus), sampler_state_dict=ahead))
    assert len(skipped) < len(full) - k  # the bug this guards against


def test_consumed_state_before_and_after_a_pass(corpus):
    dm = AsrDataModule(make_args(corpus, num_workers=0, drop_last=False))
    dl = dm.train_dataloader(_cuts(corpus))
    assert dl.consumed_sampler_state() == dl.sampler.state_dict()
    n = len(_ids(dl))
    assert dl.consumed == n
    assert dl.consumed_sampler_state()["diagnostics"] == dl.sampler.state_dict()["diagnostics"]
