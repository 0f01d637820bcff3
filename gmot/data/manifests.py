"""Lhotse cut manifests: the pieces every corpus layout shares (:mod:`gmot.data.layouts`).

Stage 1 of prepare.sh writes ``<out_dir>/<corpus>_cuts_{train,dev,test}.jsonl.gz``, one cut per
utterance (cut id = utterance id); :func:`write_split_cuts` writes one split from a layout's
recordings and supervisions, :class:`DropReport` reports what a layout (or the data filters)
skipped, and :func:`cuts_path` finds a split's manifest for the data module.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

SPLITS = ("train", "dev", "test")


class DropReport:
    """Collects dropped items per reason; every drop is either logged or counted in the summary."""

    def __init__(self, what: str, max_examples: int = 5) -> None:
        self.what = what
        self.max_examples = max_examples
        self.counts: dict[str, int] = defaultdict(int)
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, item: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < self.max_examples:
            self.examples[reason].append(item)
            logging.warning("%s: skipping %s (%s)", self.what, item, reason)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.counts:
            return f"{self.what}: nothing skipped"
        parts = [
            f"{reason}: {n} (e.g. {', '.join(self.examples[reason])})"
            for reason, n in sorted(self.counts.items())
        ]
        return f"{self.what}: skipped {self.total} -- " + "; ".join(parts)

    def log(self) -> None:
        (logging.warning if self.counts else logging.info)(self.summary())


def write_split_cuts(
    recordings: list, supervisions: list, out_dir: str | Path, corpus: str, split: str
) -> int:
    """Write ``<out_dir>/<corpus>_cuts_<split>.jsonl.gz`` from lhotse ``Recording`` and
    ``SupervisionSegment`` lists (one supervision per recording, its id the utterance id):
    manifests fixed and validated by lhotse, cuts sorted by recording id, cut id = supervision id.
    Returns the number of cuts."""
    from lhotse import CutSet, RecordingSet, SupervisionSet
    from lhotse.qa import fix_manifests, validate_recordings_and_supervisions

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rs, ss = fix_manifests(
        RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)
    )
    validate_recordings_and_supervisions(rs, ss)
    cuts = CutSet.from_manifests(recordings=rs, supervisions=ss).sort_by_recording_id()
    # cut id = utterance id (lhotse appends "-<index>" by default)
    cuts = CutSet.from_cuts(c.with_id(c.supervisions[0].id) for c in cuts)
    path = out_dir / f"{corpus}_cuts_{split}.jsonl.gz"
    cuts.to_file(path)
    hours = sum(c.duration for c in cuts) / 3600
    logging.info("wrote %s: %d cuts, %.2f h", path, len(cuts), hours)
    return len(cuts)


def cuts_path(manifest_dir: str | Path, corpus: str, split: str) -> Path:
    """Path of a split's cut manifest; raises FileNotFoundError with a hint when missing."""
    p = Path(manifest_dir) / f"{corpus}_cuts_{split}.jsonl.gz"
    if not p.is_file():
        raise FileNotFoundError(
            f"cut manifest {p} not found; run ./prepare.sh --stage 1 --stop-stage 1 in "
            f"egs/{corpus}/ASR (or pass the right --manifest-dir)"
        )
    return p
