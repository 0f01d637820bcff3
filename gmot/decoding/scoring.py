"""Error-rate scoring: character error rate for Chinese, icefall-style result files.

Files written per test set and decoding setting (``<name>`` e.g. ``test-greedy_search-epoch-30``):

* ``recogs-<name>.txt``: per cut ``<cut_id>:\\tref=<text>`` and ``<cut_id>:\\thyp=<text>``;
* ``errs-<name>.txt``: the error rate, counts of insertions/deletions/substitutions, a
  per-utterance alignment (``(ref->hyp)`` for an error, ``ref`` for a match, ``*`` for
  nothing), and the most frequent substitutions, deletions, insertions and per-unit statistics;
* ``wer-summary-<name>.txt``: ``settings<TAB>CER`` and one line per setting.

Texts are split into units with :func:`text_to_units`: for CER every non-space character is a
unit (spaces removed), otherwise whitespace-separated words. The alignment is kaldialign's
(Levenshtein, unit costs).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import kaldialign

EPS = "*"


_CER_UNIT = re.compile(r"<[^<>\s]+>|\S")


def text_to_units(text: str, cer: bool = True) -> list[str]:
    """Characters with all whitespace removed (``cer=True``; a special symbol such as
    ``<unk>`` counts as one unit) or whitespace-split words."""
    if cer:
        return _CER_UNIT.findall(text)
    return text.split()


@dataclass
class ErrorCounts:
    """Edit-operation counts over a set of utterances."""

    ins: int = 0
    dels: int = 0
    subs: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        return self.ins + self.dels + self.subs

    @property
    def error_rate(self) -> float:
        """Errors / reference units in percent (0 for an empty reference and no errors)."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_len


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[str, str]]:
    """Levenshtein alignment as (ref unit or ``*``, hyp unit or ``*``) pairs."""
    for unit in list(ref) + list(hyp):
        if unit == EPS:
            raise ValueError(f"unit {EPS!r} is reserved for the alignment gap")
    return list(kaldialign.align(list(ref), list(hyp), EPS))


def count_errors(ref: Sequence[str], hyp: Sequence[str]) -> ErrorCounts:
    """Insertions, deletions, substitutions of the best alignment of ``hyp`` to ``ref``."""
    c = ErrorCounts(ref_len=len(ref))
    for r, h in align(ref, hyp):
        if r == EPS:
            c.ins += 1
        elif h == EPS:
            c.dels += 1
        elif r != h:
            c.subs += 1
    return c


def compute_cer(refs: Iterable[str], hyps: Iterable[str]) -> ErrorCounts:
    """Corpus-level CER counts of hypothesis texts against reference texts (spaces removed)."""
    total = ErrorCounts()
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    for r, h in zip(refs, hyps):
        c = count_errors(text_to_units(r), text_to_units(h))
        total.ins += c.ins
        total.dels += c.dels
        total.subs += c.subs
        total.ref_len += c.ref_len
    return total


# (cut_id, reference text, hypothesis text)
Result = tuple[str, str, str]


def store_transcripts(path: str | Path, results: Iterable[Result]) -> Path:
    """Write ``recogs-*``: ``<cut_id>:\\tref=<text>`` then ``<cut_id>:\\thyp=<text>`` per cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for cut_id, ref, hyp in sorted(results):
            f.write(f"{cut_id}:\tref={ref}\n")
            f.write(f"{cut_id}:\thyp={hyp}\n")
    return path


def write_error_stats(
    f: TextIO,
    test_set_name: str,
    results: Iterable[Result],
    cer: bool = True,
    top_n: int = 20,
) -> ErrorCounts:
    """Write an icefall-style ``errs-*`` report to ``f`` and return the total counts.

    Args:
      f: open text file.
      test_set_name: a label written in the header.
      results: (cut_id, ref text, hyp text) per utterance.
      cer: score characters with spaces removed (Chinese) instead of words.
      top_n: how many of the most frequent substitutions/deletions/insertions to list
        (per-unit statistics list every unit).
    """
    name = "CER" if cer else "WER"
    total = ErrorCounts()
    subs: Counter[tuple[str, str]] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    # unit -> [correct, ref_count, hyp_count, errors(as ref or hyp)]
    per_unit: dict[str, list[int]] = {}
    details = []
    for cut_id, ref_text, hyp_text in sorted(results):
        ref, hyp = text_to_units(ref_text, cer), text_to_units(hyp_text, cer)
        total.ref_len += len(ref)
        shown = []
        for r, h in align(ref, hyp):
            if r != EPS:
                per_unit.setdefault(r, [0, 0, 0, 0])[1] += 1
            if h != EPS:
                per_unit.setdefault(h, [0, 0, 0, 0])[2] += 1
            if r == h:
                per_unit[r][0] += 1
                shown.append(r)
                continue
            if r == EPS:
                total.ins += 1
                ins[h] += 1
                per_unit[h][3] += 1
            elif h == EPS:
                total.dels += 1
                dels[r] += 1
                per_unit[r][3] += 1
            else:
                total.subs += 1
                subs[(r, h)] += 1
                per_unit[r][3] += 1
                per_unit[h][3] += 1
            shown.append(f"({r}->{h})")
        details.append(f"{cut_id}:\t{' '.join(shown)}")

    f.write(f"%{name} = {total.error_rate:.2f}\n")
    f.write(
        f"Errors: {total.ins} insertions, {total.dels} deletions, {total.subs} substitutions, "
        f"over {total.ref_len} reference {'characters' if cer else 'words'} "
        f"({total.ref_len - total.dels - total.subs} correct)\n"
    )
    f.write(f"Test set: {test_set_name}\n")
    f.write(
        "Search below for sections starting with PER-UTT DETAILS:, SUBSTITUTIONS:, "
        "DELETIONS:, INSERTIONS:, PER-UNIT STATS:\n\n"
    )
    f.write("PER-UTT DETAILS: corr or (ref->hyp)\n")
    for line in details:
        f.write(line + "\n")
    f.write("\nSUBSTITUTIONS: count ref -> hyp\n")
    for (r, h), n in sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]:
        f.write(f"{n}   {r} -> {h}\n")
    f.write("\nDELETIONS: count ref\n")
    for r, n in sorted(dels.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]:
        f.write(f"{n}   {r}\n")
    f.write("\nINSERTIONS: count hyp\n")
    for h, n in sorted(ins.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]:
        f.write(f"{n}   {h}\n")
    f.write("\nPER-UNIT STATS: unit  corr tot_errs count_in_ref count_in_hyp\n")
    for u, (corr, nref, nhyp, nerr) in sorted(per_unit.items(), key=lambda kv: (-kv[1][3], kv[0])):
        f.write(f"{u}   {corr} {nerr} {nref} {nhyp}\n")
    return total


def result_paths(
    out_dir: str | Path, test_set_name: str, settings: Iterable[str], suffix: str
) -> list[Path]:
    """The files :func:`save_results` writes for these settings alone (recogs, errs; the
    wer-summary is shared by every setting, see :func:`forget_results`)."""
    out_dir = Path(out_dir)
    paths = []
    for setting in settings:
        paths.append(out_dir / f"recogs-{test_set_name}-{setting}-{suffix}.txt")
        paths.append(out_dir / f"errs-{test_set_name}-{setting}-{suffix}.txt")
    return paths


def forget_results(
    out_dir: str | Path, test_set_name: str, settings: Iterable[str], suffix: str
) -> list[Path]:
    """Remove what earlier runs wrote for these settings: their recogs and errs files and their
    rows of the wer-summary (the rows of other settings stay; a summary left without rows is
    removed). Returns the files removed or rewritten."""
    settings = list(settings)
    touched = []
    for path in result_paths(out_dir, test_set_name, settings, suffix):
        if path.is_file():
            path.unlink()
            touched.append(path)
    summary = Path(out_dir) / f"wer-summary-{test_set_name}-{suffix}.txt"
    if summary.is_file():
        lines = summary.read_text(encoding="utf-8").splitlines()
        header, rows = lines[:1], _read_summary(summary)
        kept = {k: v for k, v in rows.items() if k not in settings}
        if kept != rows or not kept:
            touched.append(summary)
            if kept:
                body = [f"{k}\t{v:.2f}" for k, v in sorted(kept.items(), key=lambda kv: kv[1])]
                summary.write_text("\n".join(header + body) + "\n", encoding="utf-8")
            else:
                summary.unlink()
    return touched


def _read_summary(path: Path) -> dict[str, float]:
    """setting -> rate rows of an existing wer-summary file ({} if there is none)."""
    if not path.is_file():
        return {}
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) == 2 and not line.startswith("#"):
            try:
                rows[parts[0]] = float(parts[1])
            except ValueError:
                continue
    return rows


def save_results(
    out_dir: str | Path,
    test_set_name: str,
    results_per_setting: dict[str, list[Result]],
    suffix: str,
    cer: bool = True,
    skipped: Sequence[str] = (),
) -> dict[str, float]:
    """Write recogs/errs files per setting and one wer-summary; return setting -> error rate.

    File names: ``recogs-<test_set>-<setting>-<suffix>.txt``, ``errs-...``, and
    ``wer-summary-<test_set>-<suffix>.txt`` (settings sorted by error rate; rows of other
    settings already in that file are kept, so decoding with another beam or penalty adds a
    row instead of replacing the table). ``skipped`` names
    the cuts that were not decoded (e.g. too short), one description each: they are not scored,
    and are listed at the end of each errs file and counted in a last ``# skipped`` line of the
    summary.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rates = {}
    for setting, results in results_per_setting.items():
        store_transcripts(out_dir / f"recogs-{test_set_name}-{setting}-{suffix}.txt", results)
        errs = out_dir / f"errs-{test_set_name}-{setting}-{suffix}.txt"
        with errs.open("w", encoding="utf-8") as f:
            rates[setting] = write_error_stats(
                f, f"{test_set_name}-{setting}", results, cer
            ).error_rate
            if skipped:
                f.write(f"\nSKIPPED: {len(skipped)} cut(s) not decoded and not scored\n")
                for line in skipped:
                    f.write(line + "\n")
    summary = out_dir / f"wer-summary-{test_set_name}-{suffix}.txt"
    # settings decoded earlier into the same summary (another --beam-size, --blank-penalty, ...)
    # keep their rows; a setting decoded again gets its new rate
    table = {**_read_summary(summary), **rates}
    with summary.open("w", encoding="utf-8") as f:
        f.write(f"settings\t{'CER' if cer else 'WER'}\n")
        for setting, rate in sorted(table.items(), key=lambda kv: kv[1]):
            f.write(f"{setting}\t{rate:.2f}\n")
        if skipped:
            n = len(skipped) + len(next(iter(results_per_setting.values()), []))
            f.write(
                f"# skipped {len(skipped)} of {n} cuts (not decoded, not in the "
                f"{'CER' if cer else 'WER'}; listed in the errs file)\n"
            )
    return rates
