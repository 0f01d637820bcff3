#!/usr/bin/env python3
"""Lhotse cut manifests for an AISHELL-layout corpus (see gmot/data/manifests.py).

Example (from egs/<corpus>/ASR):
  ./local/prepare_manifests.py --corpus hsk --corpus-dir download/hsk --output-dir data/manifests

Besides the per-split reports (unreadable audio, missing or empty transcripts), transcript
lines whose utterance has no wav file in any split are counted, with examples.
"""

import argparse
import logging
from pathlib import Path

from gmot.data.manifests import TRANSCRIPT, prepare_aishell_cuts, read_transcripts


def transcripts_without_audio(corpus_dir: Path) -> list[str]:
    """Utterance ids of the transcript that have no ``data_aishell/wav/*/*/<id>.wav``, sorted."""
    texts = read_transcripts(corpus_dir / TRANSCRIPT)
    wavs = {p.stem for p in (corpus_dir / "data_aishell" / "wav").rglob("*.wav")}
    return sorted(set(texts) - wavs)


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", required=True, help="corpus name used in file names (hsk, aishell)")
    p.add_argument("--corpus-dir", required=True, help="directory containing data_aishell/")
    p.add_argument("--output-dir", default="data/manifests", help="where the cut manifests go")
    p.add_argument(
        "--splits",
        default="train,dev,test",
        help="comma-separated splits to read (e.g. 'test' for a set from synth_text_set.py)",
    )
    a = p.parse_args()
    splits = tuple(s for s in a.splits.split(",") if s)
    counts = prepare_aishell_cuts(a.corpus_dir, a.output_dir, a.corpus, splits)
    orphans = transcripts_without_audio(Path(a.corpus_dir))
    if orphans:
        logging.warning(
            "%s transcript: %d line(s) have no wav file in any split and were not used (e.g. %s)",
            a.corpus,
            len(orphans),
            ", ".join(orphans[:5]),
        )
    logging.info("manifests done: %s", counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
