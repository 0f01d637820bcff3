"""Lhotse manifests for AISHELL-layout corpora (real AISHELL-1 or the synthetic "hsk" corpus).

:func:`prepare_aishell_cuts` reads ``<corpus_dir>/data_aishell/{wav,transcript}`` exactly like
``lhotse.recipes.prepare_aishell`` (utterance id = wav stem, speaker = parent directory, same text
normalisation, spaces removed) but reports and skips unreadable audio and empty or missing
transcripts instead of crashing, then writes combined cut manifests
``<out_dir>/<corpus>_cuts_{train,dev,test}.jsonl.gz``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

SPLITS = ("train", "dev", "test")
TRANSCRIPT = Path("data_aishell/transcript/aishell_transcript_v0.8.txt")

_HOW_TO_GET = {
    "hsk": "synthesise it with `./prepare.sh --stage 0 --stop-stage 0` in egs/hsk/ASR",
    "aishell": (
        "download it with `./prepare.sh --stage 0 --stop-stage 0` in egs/aishell/ASR (needs a "
        "network; https://www.openslr.org/33/) or pass --dl-dir pointing at a local copy that "
        "contains data_aishell/"
    ),
}


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


def normalize_text(text: str) -> str:
    """AISHELL normalisation as in lhotse's recipe (full-width a/b/c/k/t -> ASCII, upper case),
    with all whitespace removed."""
    for full, ascii_ in (("ａ", "a"), ("ｂ", "b"), ("ｃ", "c"), ("ｋ", "k"), ("ｔ", "t")):
        text = text.replace(full, ascii_)
    return "".join(text.upper().split())


def check_aishell_layout(
    corpus_dir: str | Path, corpus: str = "aishell", splits: tuple[str, ...] = SPLITS
) -> Path:
    """Return ``corpus_dir`` if it holds an AISHELL-1 layout with ``splits``; else raise
    FileNotFoundError naming the missing path and how to obtain it."""
    corpus_dir = Path(corpus_dir)
    how = _HOW_TO_GET.get(corpus, _HOW_TO_GET["aishell"])
    need = [corpus_dir / TRANSCRIPT] + [corpus_dir / "data_aishell/wav" / s for s in splits]
    for p in need:
        if not p.exists():
            raise FileNotFoundError(
                f"{corpus} corpus: expected {p} (AISHELL-1 layout data_aishell/wav/{{train,dev,"
                f"test}}/SPK/UTT.wav + {TRANSCRIPT}); {how}"
            )
    return corpus_dir


def read_transcripts(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(maxsplit=1)
        if parts:
            out[parts[0]] = normalize_text(parts[1] if len(parts) > 1 else "")
    return out


def prepare_aishell_cuts(
    corpus_dir: str | Path,
    out_dir: str | Path,
    corpus: str = "aishell",
    splits: tuple[str, ...] = SPLITS,
) -> dict[str, int]:
    """Write ``<out_dir>/<corpus>_cuts_{split}.jsonl.gz`` for each of ``splits`` (a subset of
    train, dev, test); returns the number of cuts per split."""
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.qa import fix_manifests, validate_recordings_and_supervisions

    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {splits}")
    corpus_dir = check_aishell_layout(corpus_dir, corpus, tuple(splits))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = read_transcripts(corpus_dir / TRANSCRIPT)
    counts = {}
    for split in splits:
        report = DropReport(f"{corpus} {split} manifests")
        recs, sups = [], []
        for wav in sorted((corpus_dir / "data_aishell/wav" / split).rglob("*.wav")):
            utt, spk = wav.stem, wav.parent.name
            if utt not in texts:
                report.add("no transcript", utt)
                continue
            if not texts[utt]:
                report.add("empty transcript", utt)
                continue
            try:
                rec = Recording.from_file(wav)
                if rec.num_samples <= 0:
                    raise ValueError("zero samples")
            except Exception as e:  # noqa: BLE001 - any decoder error means unreadable audio
                report.add("unreadable audio", f"{wav} [{type(e).__name__}: {e}]"[:200])
                continue
            recs.append(rec)
            sups.append(
                SupervisionSegment(
                    id=utt,
                    recording_id=rec.id,
                    start=0.0,
                    duration=rec.duration,
                    channel=0,
                    language="Chinese",
                    speaker=spk,
                    text=texts[utt],
                )
            )
        report.log()
        if not recs:
            raise RuntimeError(f"{corpus} {split}: no usable utterances under {corpus_dir}")
        rs, ss = fix_manifests(
            RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
        )
        validate_recordings_and_supervisions(rs, ss)
        cuts = CutSet.from_manifests(recordings=rs, supervisions=ss).sort_by_recording_id()
        # cut id = utterance id (lhotse appends "-<index>" by default)
        cuts = CutSet.from_cuts(c.with_id(c.supervisions[0].id) for c in cuts)
        path = out_dir / f"{corpus}_cuts_{split}.jsonl.gz"
        cuts.to_file(path)
        counts[split] = len(cuts)
        hours = sum(c.duration for c in cuts) / 3600
        logging.info("wrote %s: %d cuts, %.2f h", path, len(cuts), hours)
    return counts


def cuts_path(manifest_dir: str | Path, corpus: str, split: str) -> Path:
    """Path of a split's cut manifest; raises FileNotFoundError with a hint when missing."""
    p = Path(manifest_dir) / f"{corpus}_cuts_{split}.jsonl.gz"
    if not p.is_file():
        raise FileNotFoundError(
            f"cut manifest {p} not found; run ./prepare.sh --stage 1 --stop-stage 1 in "
            f"egs/{corpus}/ASR (or pass the right --manifest-dir)"
        )
    return p
