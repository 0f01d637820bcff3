"""What the cut filters drop is reported per split and pass: counts per reason, examples and the
fraction of cuts and audio, once per epoch (once for an unchanging dev set), loudly above the
threshold (issue 21 point 5)."""

import argparse
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from make_cuts import make_corpus  # noqa: E402

from gmot.data.datamodule import AsrDataModule  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    c = make_corpus(tmp_path_factory.mktemp("corpus"), n_train=8, n_dev=6)
    # a token table without 你 and 好: cuts whose text has them are dropped as OOV
    lines = (c["lang"] / "tokens.txt").read_text(encoding="utf-8").splitlines()
    syms = [ln.split()[0] for ln in lines if ln.split()[0] not in ("你", "好")]
    kept = [f"{sym} {i}" for i, sym in enumerate(syms)]
    c["lang2"] = c["lang"].parent / "lang2"
    c["lang2"].mkdir()
    (c["lang2"] / "tokens.txt").write_text("\n".join(kept) + "\n", encoding="utf-8")
    return c


def _dm(corpus: dict, bucketing: int = 0) -> AsrDataModule:
    p = argparse.ArgumentParser()
    AsrDataModule.add_arguments(p)
    a = p.parse_args(
        ["--lang-dir", str(corpus["lang2"]), "--num-workers", "0", "--max-duration", "3",
         "--drop-last", "0", "--min-utt-duration", "0.5", "--bucketing-sampler", str(bucketing),
         "--num-buckets", "2"]
    )  # fmt: skip
    return AsrDataModule(a)


def _expected(path: Path) -> tuple[int, int]:
    from lhotse import load_manifest

    cuts = load_manifest(path)
    bad = [c for c in cuts if set(c.supervisions[0].text) & {"你", "好"}]
    return len(bad), len(cuts)


# The bucketing sampler reads the lazy cuts twice per pass (bins, then batches): each cut
# still counts once.
@pytest.mark.parametrize("bucketing", [0, 1])
def test_valid_filter_reported_once_with_totals(corpus, caplog, bucketing):
    from lhotse import load_manifest_lazy

    bad, total = _expected(corpus["dev"])
    assert 0 < bad
    dm = _dm(corpus, bucketing)
    dl = dm.valid_dataloader(load_manifest_lazy(corpus["dev"]))
    with caplog.at_level(logging.INFO):
        for _ in range(3):  # three validation runs
            list(dl)
    lines = [r for r in caplog.records if "valid cuts: dropped" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    msg = lines[0].getMessage()
    assert f"dropped {bad} of {total} cuts" in msg and "characters not in token table" in msg
    assert "s of audio" in msg and "%" in msg
    assert lines[0].levelno == logging.ERROR and "check tokens.txt" in msg  # above 10%


def test_train_filter_reported_every_epoch_not_accumulated(corpus, caplog):
    from lhotse import load_manifest_lazy

    bad, total = _expected(corpus["train"])
    dm = _dm(corpus)
    dl = dm.train_dataloader(load_manifest_lazy(corpus["train"]))
    with caplog.at_level(logging.INFO):
        for epoch in range(2):
            dl.sampler.set_epoch(epoch)
            list(dl)
    lines = [r.getMessage() for r in caplog.records if "train cuts: dropped" in r.getMessage()]
    assert len(lines) == 2
    assert all(f"dropped {bad} of {total} cuts" in m for m in lines), lines
