"""Cut filtering with reporting: duration bounds, empty transcripts, OOV characters, and
utterances too short for their token sequence after the encoder's 4x subsampling."""

from __future__ import annotations

import logging
from collections import defaultdict

from gmot.data.manifests import DropReport
from gmot.data.tokens import TokenTable


def frames_after_subsampling(
    duration: float,
    frame_shift: float = 0.01,
    time_pool: int = 1,
    output_downsampling_factor: int = 2,
) -> int:
    """Encoder output length for an utterance of ``duration`` seconds: fbank frames
    T = round(duration / frame_shift) (100 Hz), then T' = ((T - 7) // 2 + 1) // 2 for the
    published Zipformer; with the encoder's ``time_pool`` p and output factor f,
    T' = ceil(((T // p - 7) // 2) / f) (``gmot.models.zipformer.output_lengths``)."""
    t = int(round(duration / frame_shift)) // time_pool
    f = output_downsampling_factor
    return ((t - 7) // 2 + f - 1) // f


def cut_text(cut) -> str:
    """Transcript of a cut (all supervisions, whitespace removed)."""
    return "".join("".join((s.text or "").split()) for s in cut.supervisions)


class CutFilter:
    """Callable predicate for ``CutSet.filter`` that records why each cut was dropped.

    Durations are read from ``cut.duration`` (never ``num_frames``, so it works without
    precomputed features). ``oov``: ``"skip"`` drops cuts with characters missing from the token
    table, ``"unk"`` keeps them (mapped to ``<unk>`` later). The first ``max_examples`` drops per
    reason are logged immediately; :meth:`report` logs the counts since the filter was made.

    Per pass over the cuts (an epoch, a validation run) it also counts the cuts and seconds of
    audio seen and dropped per reason; :meth:`end_pass` logs that summary (counts, a few
    examples, the fraction of cuts and audio dropped), as an error when more than
    ``warn_fraction`` of the cuts or of the audio was dropped, and starts the next pass.
    """

    def __init__(
        self,
        tokens: TokenTable | None,
        min_duration: float = 1.0,
        max_duration: float = 12.0,
        oov: str = "skip",
        what: str = "cuts",
        max_examples: int = 5,
        warn_fraction: float = 0.1,
        time_pool: int = 1,
        output_downsampling_factor: int = 2,
    ) -> None:
        if min_duration < 0 or max_duration <= min_duration:
            raise ValueError(
                f"need 0 <= min_duration < max_duration, got {min_duration}, {max_duration}"
            )
        if oov not in ("skip", "unk"):
            raise ValueError(f"oov must be 'skip' or 'unk', got {oov!r}")
        self.tokens = tokens
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.oov = oov
        self.drops = DropReport(what, max_examples)
        self.what = what
        self.max_examples = max_examples
        self.warn_fraction = warn_fraction
        self.time_pool = time_pool
        self.output_downsampling_factor = output_downsampling_factor
        self.reset_pass()

    def reset_pass(self) -> None:
        """Forget the counts of the current pass (e.g. after a scan that iterated the cuts)."""
        self.seen = 0
        self.seen_s = 0.0
        self._pass_ids: set[str] = set()
        self.pass_counts: dict[str, int] = defaultdict(int)
        self.pass_seconds: dict[str, float] = defaultdict(float)
        self.pass_examples: dict[str, list[str]] = defaultdict(list)

    def reason(self, cut) -> str | None:
        """Why ``cut`` should be dropped, or None to keep it."""
        if not self.min_duration <= cut.duration <= self.max_duration:
            return f"duration outside [{self.min_duration}, {self.max_duration}] s"
        text = cut_text(cut)
        if not text:
            return "empty transcript"
        if self.tokens is not None and self.oov == "skip" and self.tokens.oov_chars(text):
            return "characters not in token table"
        frames = frames_after_subsampling(
            cut.duration,
            time_pool=self.time_pool,
            output_downsampling_factor=self.output_downsampling_factor,
        )
        if frames < len(text):
            return "too short for its tokens (T' < U)"
        return None

    def __call__(self, cut) -> bool:
        r = self.reason(cut)
        if cut.id in self._pass_ids:
            # a second look within one pass (e.g. a bucketing sampler estimating its duration
            # bins from the same lazy cuts) decides the same and is not counted again
            return r is None
        self._pass_ids.add(cut.id)
        self.seen += 1
        self.seen_s += cut.duration
        if r is None:
            return True
        extra = ""
        if r.startswith("characters"):
            extra = f" {self.tokens.oov_chars(cut_text(cut))}"
        elif r.startswith("too short") or r.startswith("duration"):
            extra = f" ({cut.duration:.2f} s, {len(cut_text(cut))} chars)"
        self.drops.add(r, f"{cut.id}{extra}")
        self.pass_counts[r] += 1
        self.pass_seconds[r] += cut.duration
        if len(self.pass_examples[r]) < 3:
            self.pass_examples[r].append(cut.id)
        return False

    def report(self) -> str:
        self.drops.log()
        return self.drops.summary()

    def pass_summary(self) -> tuple[str, bool]:
        """(summary of the current pass, whether it crosses ``warn_fraction``)."""
        n = sum(self.pass_counts.values())
        secs = sum(self.pass_seconds.values())
        if self.seen == 0:
            return f"{self.what}: no cuts seen", False
        fc, fs = n / self.seen, secs / max(self.seen_s, 1e-9)
        head = (
            f"{self.what}: dropped {n} of {self.seen} cuts ({100 * fc:.1f}%), {secs:.1f} of "
            f"{self.seen_s:.1f} s of audio ({100 * fs:.1f}%)"
        )
        parts = [
            f"{reason}: {k} cuts, {self.pass_seconds[reason]:.1f} s "
            f"(e.g. {', '.join(self.pass_examples[reason])})"
            for reason, k in sorted(self.pass_counts.items(), key=lambda kv: -kv[1])
        ]
        return head + (" -- " + "; ".join(parts) if parts else ""), max(fc, fs) > self.warn_fraction

    def end_pass(self, log_if_same: bool = True) -> str:
        """Log the summary of the pass that just ended and start a new one.

        Args:
          log_if_same: False: log only when the summary differs from the last one logged (a
            validation set filtered the same way every time is reported once).
        Returns:
          the summary.
        """
        text, alarming = self.pass_summary()
        if log_if_same or text != getattr(self, "_last_logged", None):
            if alarming:
                logging.error(
                    "%s. More than %.0f%% of the cuts or audio dropped: check tokens.txt "
                    "(--lang-dir), --oov and --min/--max-utt-duration.",
                    text,
                    100 * self.warn_fraction,
                )
            else:
                logging.info(text)
            self._last_logged = text
        self.reset_pass()
        return text
