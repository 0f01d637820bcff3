"""The AISHELL-1 layout (real AISHELL-1, or the synthetic hsk corpus written in it)::

    <corpus_dir>/data_aishell/wav/{train,dev,test}/<speaker>/<utterance>.wav
    <corpus_dir>/data_aishell/transcript/aishell_transcript_v0.8.txt   ("<utterance> <text>" lines)

:func:`prepare_aishell_cuts` reads it exactly like ``lhotse.recipes.prepare_aishell`` (utterance id
= wav stem, speaker = parent directory, same text normalisation, spaces removed) but reports and
skips unreadable audio and empty or missing transcripts instead of crashing. :func:`prepare_cuts`
and :func:`inputs` make it a layout for stage 1 of prepare.sh (see :mod:`gmot.data.layouts`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from gmot.data.manifests import SPLITS, DropReport, write_split_cuts

TRANSCRIPT = Path("data_aishell/transcript/aishell_transcript_v0.8.txt")
WAV_DIR = Path("data_aishell/wav")


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
    need = [corpus_dir / TRANSCRIPT] + [corpus_dir / WAV_DIR / s for s in splits]
    for p in need:
        if not p.exists():
            raise FileNotFoundError(
                f"{corpus} corpus: expected {p} (AISHELL-1 layout data_aishell/wav/{{train,dev,"
                f"test}}/SPK/UTT.wav + {TRANSCRIPT}); make it with `./prepare.sh --stage 0 "
                f"--stop-stage 0` in egs/{corpus}/ASR, or pass --dl-dir pointing at a copy that "
                "contains data_aishell/"
            )
    return corpus_dir


def read_transcripts(path: Path) -> dict[str, str]:
    """``{utterance id: normalised text}`` of a transcript file."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split(maxsplit=1)
        if parts:
            out[parts[0]] = normalize_text(parts[1] if len(parts) > 1 else "")
    return out


def _split_manifests(corpus_dir: Path, split: str, corpus: str, texts: dict[str, str]):
    """(recordings, supervisions) of one split; what cannot be used is reported and skipped."""
    from lhotse import Recording, SupervisionSegment

    report = DropReport(f"{corpus} {split} manifests")
    recs, sups = [], []
    for wav in sorted((corpus_dir / WAV_DIR / split).rglob("*.wav")):
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
    return recs, sups


def prepare_aishell_cuts(
    corpus_dir: str | Path,
    out_dir: str | Path,
    corpus: str = "aishell",
    splits: tuple[str, ...] = SPLITS,
) -> dict[str, int]:
    """Write ``<out_dir>/<corpus>_cuts_{split}.jsonl.gz`` for each of ``splits`` (a subset of
    train, dev, test); returns the number of cuts per split."""
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {splits}")
    corpus_dir = check_aishell_layout(corpus_dir, corpus, tuple(splits))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    texts = read_transcripts(corpus_dir / TRANSCRIPT)
    counts = {}
    for split in splits:
        recs, sups = _split_manifests(corpus_dir, split, corpus, texts)
        if not recs:
            raise RuntimeError(f"{corpus} {split}: no usable utterances under {corpus_dir}")
        counts[split] = write_split_cuts(recs, sups, out_dir, corpus, split)
    return counts


def transcripts_without_audio(corpus_dir: str | Path) -> list[str]:
    """Utterance ids of the transcript that have no ``data_aishell/wav/*/*/<id>.wav``, sorted."""
    corpus_dir = Path(corpus_dir)
    texts = read_transcripts(corpus_dir / TRANSCRIPT)
    wavs = {p.stem for p in (corpus_dir / WAV_DIR).rglob("*.wav")}
    return sorted(set(texts) - wavs)


# ----------------------------------------------------------------- the layout (gmot.data.layouts)


def prepare_cuts(
    corpus_dir: str | Path, out_dir: str | Path, corpus: str, splits: tuple[str, ...] = SPLITS
) -> dict[str, int]:
    """:func:`prepare_aishell_cuts`, then a warning counting the transcript lines whose utterance
    has no wav file in any split (with examples)."""
    counts = prepare_aishell_cuts(corpus_dir, out_dir, corpus, splits)
    orphans = transcripts_without_audio(corpus_dir)
    if orphans:
        logging.warning(
            "%s transcript: %d line(s) have no wav file in any split and were not used (e.g. %s)",
            corpus,
            len(orphans),
            ", ".join(orphans[:5]),
        )
    return counts


def inputs(corpus_dir: str | Path) -> str:
    """``wavs=<number of *.wav under data_aishell/wav> <transcript name>:<md5 prefix>`` (or
    ``:missing``); the same line the shell's ``find | wc -l`` and ``md5sum`` gave, so markers
    written by an older prepare.sh still match."""
    corpus_dir = Path(corpus_dir)
    nwav = 0
    for _, dirs, files in os.walk(corpus_dir / WAV_DIR):  # as find: symlinks not followed
        nwav += sum(name.endswith(".wav") for name in dirs + files)
    t = corpus_dir / TRANSCRIPT
    digest = hashlib.md5(t.read_bytes()).hexdigest()[:12] if t.is_file() else "missing"
    return f"wavs={nwav} {t.name}:{digest}"
