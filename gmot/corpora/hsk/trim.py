"""Cut the synthesiser's silence padding off hsk training cuts (``prepare.sh --trim-silence``).

Every hsk utterance has 0.05-0.35 s of silence before and after the speech (and short ones are
filled up to 1.1 s), about 16 % of the training audio. The padding is drawn from the
utterance's own generator (:func:`gmot.corpora.hsk.synth.speech_span` re-draws it), so the
speech span is known exactly, without a voice-activity detector. :func:`trim_silence` keeps
``margin`` seconds of silence on each side and makes the supervision cover the trimmed cut.
Only training cuts are meant to be trimmed: dev, test and any held-out set keep their silence,
as real recordings would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from gmot.corpora.hsk.synth import speech_span

__all__ = ["trim_silence"]


def trim_silence(cuts: Iterable, seed: int, margin: float) -> tuple[list, float, float]:
    """Trim each cut of a synthesised hsk corpus to its speech plus ``margin`` s per side.

    Args:
      cuts: lhotse MonoCuts spanning whole recordings of a corpus synthesised with ``seed``
        (one supervision each, the utterance id as recording id).
      seed: the corpus's seed (``prepare.sh --seed``).
      margin: seconds of silence kept before and after the speech (>= 0).

    Returns:
      (trimmed cuts, seconds before, seconds after).
    """
    from lhotse.utils import fastcopy

    if margin < 0:
        raise ValueError(f"margin must be >= 0 seconds, got {margin}")
    out, before, after = [], 0.0, 0.0
    for cut in cuts:
        rec = cut.recording
        if cut.start != 0 or abs(cut.duration - rec.duration) > 1e-6:
            raise ValueError(
                f"cut {cut.id}: covers {cut.start:.3f}-{cut.end:.3f} s of a {rec.duration:.3f} s "
                "recording; trim_silence takes whole, untrimmed recordings"
            )
        if len(cut.supervisions) != 1:
            raise ValueError(f"cut {cut.id}: {len(cut.supervisions)} supervisions, expected 1")
        start, end = speech_span(rec.id, seed, rec.num_samples, rec.sampling_rate)
        lo, hi = max(0.0, start - margin), min(cut.duration, end + margin)
        trimmed = cut.truncate(offset=lo, duration=hi - lo, preserve_id=True)
        sup = fastcopy(cut.supervisions[0], start=0.0, duration=trimmed.duration)
        out.append(fastcopy(trimmed, supervisions=[sup]))
        before += cut.duration
        after += trimmed.duration
    logging.info(
        "trimmed %d cuts: %.2f h -> %.2f h (%.1f %% less), margin %.3f s",
        len(out),
        before / 3600,
        after / 3600,
        100 * (1 - after / before) if before else 0.0,
        margin,
    )
    return out, before, after
