"""Cut filtering with reporting: duration bounds, empty transcripts, OOV characters, and
utterances too short for their token sequence after the encoder's 4x subsampling."""

from __future__ import annotations

from gmot.data.manifests import DropReport
from gmot.data.tokens import TokenTable


def frames_after_subsampling(duration: float, frame_shift: float = 0.01) -> int:
    """Encoder output length for an utterance of ``duration`` seconds: fbank frames
    T = round(duration / frame_shift) (100 Hz), then T' = ((T - 7) // 2 + 1) // 2."""
    t = int(round(duration / frame_shift))
    return ((t - 7) // 2 + 1) // 2


def cut_text(cut) -> str:
    """Transcript of a cut (all supervisions, whitespace removed)."""
    return "".join("".join((s.text or "").split()) for s in cut.supervisions)


class CutFilter:
    """Callable predicate for ``CutSet.filter`` that records why each cut was dropped.

    Durations are read from ``cut.duration`` (never ``num_frames``, so it works without
    precomputed features). ``oov``: ``"skip"`` drops cuts with characters missing from the token
    table, ``"unk"`` keeps them (mapped to ``<unk>`` later). The first ``max_examples`` drops per
    reason are logged immediately; :meth:`report` logs the counts.
    """

    def __init__(
        self,
        tokens: TokenTable | None,
        min_duration: float = 1.0,
        max_duration: float = 12.0,
        oov: str = "skip",
        what: str = "cuts",
        max_examples: int = 5,
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

    def reason(self, cut) -> str | None:
        """Why ``cut`` should be dropped, or None to keep it."""
        if not self.min_duration <= cut.duration <= self.max_duration:
            return f"duration outside [{self.min_duration}, {self.max_duration}] s"
        text = cut_text(cut)
        if not text:
            return "empty transcript"
        if self.tokens is not None and self.oov == "skip" and self.tokens.oov_chars(text):
            return "characters not in token table"
        if frames_after_subsampling(cut.duration) < len(text):
            return "too short for its tokens (T' < U)"
        return None

    def __call__(self, cut) -> bool:
        r = self.reason(cut)
        if r is None:
            return True
        extra = ""
        if r.startswith("characters"):
            extra = f" {self.tokens.oov_chars(cut_text(cut))}"
        elif r.startswith("too short") or r.startswith("duration"):
            extra = f" ({cut.duration:.2f} s, {len(cut_text(cut))} chars)"
        self.drops.add(r, f"{cut.id}{extra}")
        return False

    def report(self) -> str:
        self.drops.log()
        return self.drops.summary()
