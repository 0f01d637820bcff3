"""Command lines of the hsk synthesiser: ``local/synth_hsk_corpus.py`` (:func:`main`) and
``local/synth_text_set.py`` (:func:`main_text_set`)."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from gmot.corpora.hsk.plan import plan_text_set
from gmot.corpora.hsk.synth import synthesize_corpus, write_corpus
from gmot.corpora.hsk.text import TextBalance
from gmot.settings import add_flags, from_flags

__all__ = ["get_parser", "get_text_set_parser", "main", "main_text_set"]

DESCRIPTION = 'Synthesise the embedded offline "hsk" corpus in AISHELL-1\'s directory layout.'


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--output-dir", required=True, help="corpus root; data_aishell/ is created in it"
    )
    p.add_argument("--num-train", type=int, default=6000, help="training utterances")
    p.add_argument("--num-dev", type=int, default=300, help="dev utterances")
    p.add_argument("--num-test", type=int, default=300, help="test utterances")
    p.add_argument("--utts-per-speaker", type=int, default=20, help="utterances per speaker")
    p.add_argument(
        "--max-level",
        type=int,
        default=1,
        help="character set: the characters of the HSK sentences of levels 1..max-level",
    )
    p.add_argument("--min-chars", type=int, default=4, help="shortest sentence (characters)")
    p.add_argument("--max-chars", type=int, default=16, help="longest sentence (characters)")
    p.add_argument(
        "--held-sentences",
        type=int,
        default=60,
        help="natural HSK sentences held out for dev, and as many for test",
    )
    p.add_argument(
        "--held-variants",
        type=int,
        default=0,
        help="espeak voice variants used only by dev, and as many only by test (0: all splits "
        "draw from every variant; speakers differ between splits either way)",
    )
    p.add_argument(
        "--pypinyin-prob",
        type=float,
        default=0.3,
        help="share of utterances read with pypinyin's pinyin instead of the HSK readings",
    )
    add_flags(p, TextBalance)  # --text-flatten, --text-backoff, --coverage-target
    p.add_argument("--seed", type=int, default=42, help="seed of text, voices and noise")
    p.add_argument(
        "--num-jobs",
        type=int,
        default=1,
        help="worker processes (the output does not depend on it)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    a = get_parser().parse_args(argv)
    t0 = time.time()
    try:
        text_balance = from_flags(TextBalance, a)
        counts = synthesize_corpus(
            a.output_dir,
            num_train=a.num_train,
            num_dev=a.num_dev,
            num_test=a.num_test,
            utts_per_speaker=a.utts_per_speaker,
            max_level=a.max_level,
            min_chars=a.min_chars,
            max_chars=a.max_chars,
            held_sentences=a.held_sentences,
            held_variants=a.held_variants,
            pypinyin_prob=a.pypinyin_prob,
            text_balance=text_balance,
            seed=a.seed,
            num_jobs=a.num_jobs,
        )
    except ValueError as e:
        logging.error("hsk corpus: %s", e)
        return 2
    logging.info("hsk corpus written to %s: %s in %.1f s", a.output_dir, counts, time.time() - t0)
    return 0


def get_text_set_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Synthesise a test set from any Chinese text file (one sentence per line) "
        "with espeak-ng, in AISHELL-1 layout (split 'test'): a set independent of the hsk "
        "corpus's own sentences and voices, for checking that a model generalises.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--text-file", type=Path, required=True, help="UTF-8, one sentence per line")
    p.add_argument("--output-dir", type=Path, required=True, help="data_aishell/ is created in it")
    p.add_argument("--readings", type=int, default=5, help="utterances per sentence")
    p.add_argument("--utts-per-speaker", type=int, default=10, help="utterances per speaker")
    p.add_argument(
        "--variants", default="", help="comma-separated espeak variants (default: every usable one)"
    )
    p.add_argument("--pitch-range", default="0,100", help="base pitch range, min,max (0..100)")
    p.add_argument("--rate-range", default="90,260", help="rate range, min,max (words/min)")
    p.add_argument("--seed", type=int, default=7, help="seed of voices and noise")
    p.add_argument("--num-jobs", type=int, default=1, help="worker processes")
    return p


def main_text_set(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    a = get_text_set_parser().parse_args(argv)

    def pair(v: str, name: str) -> tuple[int, int]:
        lo, hi = (int(x) for x in v.split(","))
        if lo > hi:
            raise ValueError(f"{name}: min {lo} > max {hi}")
        return lo, hi

    try:
        utts = plan_text_set(
            a.text_file.read_text(encoding="utf-8").splitlines(),
            readings=a.readings,
            utts_per_speaker=a.utts_per_speaker,
            variants=[v for v in a.variants.split(",") if v] or None,
            pitch_range=pair(a.pitch_range, "--pitch-range"),
            rate_range=pair(a.rate_range, "--rate-range"),
            seed=a.seed,
        )
    except (OSError, ValueError) as e:
        logging.error("text set: %s", e)
        return 2
    counts = write_corpus(a.output_dir, utts, seed=a.seed, num_jobs=a.num_jobs)
    logging.info("text set written to %s: %s", a.output_dir, counts)
    return 0
