"""Public pruned RNN-T functions: k2's names and arguments, dispatched to k2 or the builtin.

Every function forwards to ``k2.<same name>`` (or ``fast_rnnt.<same name>``) when the selected
backend is that package (:mod:`gmot.transducer.backend`) and to the builtin implementation
(``losses.py``, ``pruning.py``, ``recursion.py``) otherwise. Each function's docstring gives
the shape and meaning of every argument and of the result (B: batch, T: frames, S: labels of
the longest sequence, C: vocabulary size).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from torch import Tensor

from gmot.transducer import losses as _L
from gmot.transducer import pruning as _P
from gmot.transducer.backend import external_rnnt_module
from gmot.transducer.recursion import (
    joint_mutual_information_recursion_builtin,
    mutual_information_recursion_builtin,
)


def _external(x: Tensor) -> ModuleType | None:
    """The external package (k2 or fast_rnnt) that runs a call whose inputs are like ``x``."""
    return external_rnnt_module(x.device)


def _external_fn(x: Tensor, name: str) -> Callable[..., Any] | None:
    """``<package>.<name>`` of the external backend for inputs like ``x``; None for builtin or
    when that package lacks the function (older releases: the builtin runs instead)."""
    ext = _external(x)
    return None if ext is None else getattr(ext, name, None)


def joint_mutual_information_recursion(
    px: Sequence[Tensor], py: Sequence[Tensor], boundary: Tensor | None = None
) -> Tensor:
    """Per-term breakdown of the lattice log-likelihood of ``sum(px)``, ``sum(py)`` (k2's).

    Used when the arc log-probs are a sum of N terms (e.g. an acoustic and a language-model
    part) and each term's share of the log-likelihood is wanted.

    Args:
      px: N >= 1 tensors of one shape, (B, S, T+1) regular or (B, S, T) modified; their sum is
        the label-arc log-probs (see :func:`mutual_information_recursion`).
      py: N tensors of one shape, (B, S+1, T); their sum is the blank-arc log-probs.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
    Returns:
      (N, B): row n is the sum of term n over the arcs of the summed lattice, weighted by
      each arc's posterior probability; row 0 also carries the remainder (no gradient), so
      that the rows add up to the log-likelihood that :func:`mutual_information_recursion`
      gives for ``sum(px)``, ``sum(py)``. The gradient of any row w.r.t. ``px[n]`` /
      ``py[n]`` is the arc posterior.
    """
    fn = _external_fn(px[0], "joint_mutual_information_recursion")
    if fn is not None:
        return fn(px, py, boundary=boundary)
    return joint_mutual_information_recursion_builtin(px, py, boundary)


def get_rnnt_logprobs(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    rnnt_type: str = "regular",
    boundary: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Arc log-probs (px, py) of the "simple" joiner ``am + lm`` (k2's ``get_rnnt_logprobs``).

    The "simple" joiner adds the two: ``logits[b, t, s, :] = am[b, t, :] + lm[b, s, :]``,
    normalised over the C symbols; (B, T, S+1, C) is never formed in memory.
    Argument order as k2's: ``rnnt_type`` comes before ``boundary`` here (the other
    ``get_rnnt_logprobs_*`` functions take ``boundary`` first).

    Args:
      lm: (B, S+1, C) float32 or float64. The prediction network's output projected to the
        vocabulary (C symbols), one row per label context: row s after the first s labels.
        Unnormalised scores (log-softmax is taken inside).
      am: (B, T, C), same dtype as ``lm``. The encoder's output projected to the vocabulary,
        one row per frame; unnormalised.
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
    Returns:
      (px, py):
        px: (B, S, T+1) for ``"regular"``, (B, S, T) otherwise. ``px[b, s, t]`` is the
          log-prob of emitting label ``symbols[b, s]`` after s labels at frame t; -inf where no
          label may be emitted (regular: at frame T, and at ``t_end`` of each sequence).
        py: (B, S+1, T). ``py[b, s, t]`` is the log-prob of emitting blank after s labels at
          frame t.
    """
    kw = dict(rnnt_type=rnnt_type, boundary=boundary)
    fn = _external_fn(lm, "get_rnnt_logprobs")
    if fn is not None:
        return fn(lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw)
    return _L.get_rnnt_logprobs(lm, am, symbols, termination_symbol, **kw)


def get_rnnt_logprobs_smoothed(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    lm_only_scale: float = 0.1,
    am_only_scale: float = 0.1,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """Arc log-probs (px, py) of the simple joiner smoothed with lm-only and am-only models.

    Args:
      lm: (B, S+1, C) float32 or float64. The prediction network's output projected to the
        vocabulary (C symbols), one row per label context: row s after the first s labels.
        Unnormalised scores (log-softmax is taken inside).
      am: (B, T, C), same dtype as ``lm``. The encoder's output projected to the vocabulary,
        one row per frame; unnormalised.
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      lm_only_scale: weight of the lm-only model (``lm`` log-softmaxed over C).
      am_only_scale: weight of the am-only model (``am`` plus the log of the average symbol
        distribution of ``lm``, log-softmaxed over C). The joint keeps weight
        ``1 - lm_only_scale - am_only_scale``; the three log-probs are interpolated.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
    Returns:
      (px, py), shapes and meaning as :func:`get_rnnt_logprobs`:
        px: (B, S, T+1) for ``"regular"``, (B, S, T) otherwise. ``px[b, s, t]`` is the
          log-prob of emitting label ``symbols[b, s]`` after s labels at frame t; -inf where no
          label may be emitted (regular: at frame T, and at ``t_end`` of each sequence).
        py: (B, S+1, T). ``py[b, s, t]`` is the log-prob of emitting blank after s labels at
          frame t.
    """
    kw = dict(
        lm_only_scale=lm_only_scale,
        am_only_scale=am_only_scale,
        boundary=boundary,
        rnnt_type=rnnt_type,
    )
    fn = _external_fn(lm, "get_rnnt_logprobs_smoothed")
    if fn is not None:
        return fn(lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw)
    return _L.get_rnnt_logprobs_smoothed(lm, am, symbols, termination_symbol, **kw)


def get_rnnt_logprobs_joint(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """Arc log-probs (px, py) from the full joiner output (every frame with every context).

    Args:
      logits: (B, T, S+1, C) float32 or float64: the joiner's output for frame t and label
        context s (after the first s labels), unnormalised (log-softmax is taken inside).
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
    Returns:
      (px, py):
        px: (B, S, T+1) for ``"regular"``, (B, S, T) otherwise. ``px[b, s, t]`` is the
          log-prob of emitting label ``symbols[b, s]`` after s labels at frame t; -inf where no
          label may be emitted (regular: at frame T, and at ``t_end`` of each sequence).
        py: (B, S+1, T). ``py[b, s, t]`` is the log-prob of emitting blank after s labels at
          frame t.
    """
    kw = dict(boundary=boundary, rnnt_type=rnnt_type)
    fn = _external_fn(logits, "get_rnnt_logprobs_joint")
    if fn is not None:
        return fn(logits=logits, symbols=symbols, termination_symbol=termination_symbol, **kw)
    return _L.get_rnnt_logprobs_joint(logits, symbols, termination_symbol, **kw)


def get_rnnt_logprobs_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """Arc log-probs (px, py) from the joiner output on the pruned lattice.

    Args:
      logits: (B, T, s_range, C) float32 or float64: the joiner's output at frame t for the
        contexts ``ranges[b, t, :]``, unnormalised (e.g. ``joiner(am_pruned, lm_pruned)`` from
        :func:`do_rnnt_pruning`).
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      ranges: (B, T, s_range) int64, from :func:`get_rnnt_prune_ranges`: the label contexts
        (numbers of labels emitted, in [0, S]) kept at each frame.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
    Returns:
      (px, py), full lattice shapes as :func:`get_rnnt_logprobs_joint`; arcs outside each
      frame's window are -inf:
        px: (B, S, T+1) for ``"regular"``, (B, S, T) otherwise. ``px[b, s, t]`` is the
          log-prob of emitting label ``symbols[b, s]`` after s labels at frame t; -inf where no
          label may be emitted (regular: at frame T, and at ``t_end`` of each sequence).
        py: (B, S+1, T). ``py[b, s, t]`` is the log-prob of emitting blank after s labels at
          frame t.
    """
    kw = dict(boundary=boundary, rnnt_type=rnnt_type)
    fn = _external_fn(logits, "get_rnnt_logprobs_pruned")
    if fn is not None:
        return fn(
            logits=logits,
            symbols=symbols,
            ranges=ranges,
            termination_symbol=termination_symbol,
            **kw,
        )
    return _L.get_rnnt_logprobs_pruned(logits, symbols, ranges, termination_symbol, **kw)


def mutual_information_recursion(
    px: Tensor, py: Tensor, boundary: Tensor | None = None, return_grad: bool = False
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    """Log-likelihood of each lattice: log-sum over all paths of the arc log-probs (k2's).

    The lattice state (s, t) means s labels emitted after t frames; a label arc goes from
    (s, t) to (s+1, t) (regular) or (s+1, t+1) (modified), a blank arc from (s, t) to
    (s, t+1). The result is the log-sum-exp, over all paths from
    ``(s_begin, t_begin)`` to ``(s_end, t_end)``, of the arc log-probs along the path.

    Args:
      px: (B, S, T+1) for regular RNN-T or (B, S, T) for modified, float32 or float64:
        ``px[b, s, t]`` is the log-prob of the label arc leaving state (s, t).
      py: (B, S+1, T), same dtype: ``py[b, s, t]`` is the log-prob of the blank arc leaving
        state (s, t).
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      return_grad: also return ``(px_grad, py_grad)``, shapes as px and py: the derivatives
        of each score w.r.t. px and py (the posterior probability of each arc).
    Returns:
      scores (B,): the log-likelihood of each sequence (not negated); with ``return_grad``
      ``(scores, (px_grad, py_grad))``. Differentiable w.r.t. px and py.
    """
    ext = _external(px)
    if ext is not None:
        return ext.mutual_information_recursion(px, py, boundary=boundary, return_grad=return_grad)
    return mutual_information_recursion_builtin(px, py, boundary, return_grad)


def rnnt_loss_simple(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
    return_grad: bool = False,
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    """RNN-T loss of the "simple" joiner ``am + lm`` (k2's ``rnnt_loss_simple``).

    The "simple" joiner adds the two: ``logits[b, t, s, :] = am[b, t, :] + lm[b, s, :]``,
    normalised over the C symbols; (B, T, S+1, C) is never formed in memory.
    Cheap enough to run on the whole lattice; its occupation grads (``return_grad``) choose
    the windows of the pruned loss (:func:`get_rnnt_prune_ranges`).

    Args:
      lm: (B, S+1, C) float32 or float64. The prediction network's output projected to the
        vocabulary (C symbols), one row per label context: row s after the first s labels.
        Unnormalised scores (log-softmax is taken inside).
      am: (B, T, C), same dtype as ``lm``. The encoder's output projected to the vocabulary,
        one row per frame; unnormalised.
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
      delay_penalty: >= 0 (0: none). Adds ``delay_penalty * ((T_b - 1) / 2 - t)`` to the
        log-prob of every label emitted at frame t (``T_b``: the sequence's ``t_end``, T
        without ``boundary``), which favours alignments that emit labels early (lower latency
        of streaming models).
      reduction: ``"none"``: a (B,) tensor, one loss per sequence; ``"mean"`` / ``"sum"``:
        their mean / sum over the batch (a scalar).
      return_grad: also return ``(px_grad, py_grad)``, shapes as px and py: the derivatives
        of each sequence's log-likelihood w.r.t. px and py, i.e. the posterior probability that
        an alignment uses each arc (the input of :func:`get_rnnt_prune_ranges`).
    Returns:
      The loss: the negated log-likelihood (nats) of each label sequence, summed over all
      alignments the lattice allows, reduced as ``reduction`` says. With ``return_grad``:
      ``(loss, (px_grad, py_grad))``.
    """
    kw = dict(
        boundary=boundary,
        rnnt_type=rnnt_type,
        delay_penalty=delay_penalty,
        reduction=reduction,
        return_grad=return_grad,
    )
    ext = _external(lm)
    if ext is not None:
        return ext.rnnt_loss_simple(
            lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw
        )
    return _L.rnnt_loss_simple(lm, am, symbols, termination_symbol, **kw)


def rnnt_loss_smoothed(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    lm_only_scale: float = 0.1,
    am_only_scale: float = 0.1,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
    return_grad: bool = False,
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    """RNN-T loss of the simple joiner smoothed with lm-only and am-only models.

    icefall's pruned-transducer recipes use ``lm_only_scale=0.25, am_only_scale=0.0``.

    Args:
      lm: (B, S+1, C) float32 or float64. The prediction network's output projected to the
        vocabulary (C symbols), one row per label context: row s after the first s labels.
        Unnormalised scores (log-softmax is taken inside).
      am: (B, T, C), same dtype as ``lm``. The encoder's output projected to the vocabulary,
        one row per frame; unnormalised.
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      lm_only_scale: weight of the lm-only model (``lm`` log-softmaxed over C).
      am_only_scale: weight of the am-only model (``am`` plus the log of the average symbol
        distribution of ``lm``, log-softmaxed over C). The joint keeps weight
        ``1 - lm_only_scale - am_only_scale``; the three log-probs are interpolated.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
      delay_penalty: >= 0 (0: none). Adds ``delay_penalty * ((T_b - 1) / 2 - t)`` to the
        log-prob of every label emitted at frame t (``T_b``: the sequence's ``t_end``, T
        without ``boundary``), which favours alignments that emit labels early (lower latency
        of streaming models).
      reduction: ``"none"``: a (B,) tensor, one loss per sequence; ``"mean"`` / ``"sum"``:
        their mean / sum over the batch (a scalar).
      return_grad: also return ``(px_grad, py_grad)``, shapes as px and py: the derivatives
        of each sequence's log-likelihood w.r.t. px and py, i.e. the posterior probability that
        an alignment uses each arc (the input of :func:`get_rnnt_prune_ranges`).
    Returns:
      The loss: the negated log-likelihood (nats) of each label sequence, summed over all
      alignments the lattice allows, reduced as ``reduction`` says. With ``return_grad``:
      ``(loss, (px_grad, py_grad))``.
    """
    kw = dict(
        lm_only_scale=lm_only_scale,
        am_only_scale=am_only_scale,
        boundary=boundary,
        rnnt_type=rnnt_type,
        delay_penalty=delay_penalty,
        reduction=reduction,
        return_grad=return_grad,
    )
    ext = _external(lm)
    if ext is not None:
        return ext.rnnt_loss_smoothed(
            lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw
        )
    return _L.rnnt_loss_smoothed(lm, am, symbols, termination_symbol, **kw)


def get_rnnt_prune_ranges(
    px_grad: Tensor, py_grad: Tensor, boundary: Tensor, s_range: int
) -> Tensor:
    """The window of label contexts to keep at each frame, for the pruned loss (k2's).

    At each frame the window of ``s_range`` consecutive contexts that holds the most posterior
    mass of the simple loss is chosen; windows then start at 0, never move back and never skip
    a label, and the last frame reaches the last label.

    Args:
      px_grad: (B, S, T+1) regular or (B, S, T) modified/constrained: label-arc posteriors,
        from ``rnnt_loss_simple(..., return_grad=True)`` (or the smoothed loss).
      py_grad: (B, S+1, T): blank-arc posteriors, from the same call.
      boundary: (B, 4) int64 ``[s_begin, t_begin, s_end, t_end]`` per sequence (required
        here).
      s_range: the window size, an integer >= 1 (int, numpy integer or one-element integer
        tensor). Regular RNN-T needs a window large enough to emit every label (at least 2);
        a smaller one is raised, with a warning, as k2 does; one above S becomes S + 1.
    Returns:
      ranges: (B, T, s_range') int64, ``ranges[b, t, :]`` the consecutive contexts
      ``s0, s0 + 1, ...`` kept at frame t (s_range' the window size actually used).
    """
    s_range = _P.as_s_range(s_range)
    ext = _external(px_grad)
    if ext is not None:
        return ext.get_rnnt_prune_ranges(
            px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=s_range
        )
    return _P.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)


def do_rnnt_pruning(am: Tensor, lm: Tensor, ranges: Tensor) -> tuple[Tensor, Tensor]:
    """The joiner's inputs at the kept contexts: (am_pruned, lm_pruned) (k2's).

    Args:
      am: (B, T, D) encoder side of the joiner (in icefall ``joiner.encoder_proj`` of the
        encoder output, D = joiner dim).
      lm: (B, S+1, D) decoder side of the joiner (``joiner.decoder_proj`` of the decoder
        output), one row per label context.
      ranges: (B, T, s_range) int64 from :func:`get_rnnt_prune_ranges`.
    Returns:
      (am_pruned, lm_pruned), each (B, T, s_range, D): ``am`` repeated over the window (the
      builtin returns a broadcast view) and ``lm`` at the contexts ``ranges[b, t, :]``; the
      joiner's output on them is the ``logits`` of :func:`rnnt_loss_pruned`.
    """
    ext = _external(am)
    if ext is not None:
        return ext.do_rnnt_pruning(am=am, lm=lm, ranges=ranges)
    return _P.do_rnnt_pruning(am, lm, ranges)


def rnnt_loss_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
) -> Tensor:
    """RNN-T loss on the pruned lattice: only ``s_range`` label contexts per frame (k2's).

    The full joiner is evaluated on (B, T, s_range) instead of (B, T, S+1) points; arcs
    outside the windows count as impossible.

    Args:
      logits: (B, T, s_range, C) float32 or float64: the joiner's output at frame t for the
        contexts ``ranges[b, t, :]``, unnormalised.
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      ranges: (B, T, s_range) int64, from :func:`get_rnnt_prune_ranges`.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
      delay_penalty: >= 0 (0: none). Adds ``delay_penalty * ((T_b - 1) / 2 - t)`` to the
        log-prob of every label emitted at frame t (``T_b``: the sequence's ``t_end``, T
        without ``boundary``), which favours alignments that emit labels early (lower latency
        of streaming models).
      reduction: ``"none"``: a (B,) tensor, one loss per sequence; ``"mean"`` / ``"sum"``:
        their mean / sum over the batch (a scalar).
    Returns:
      The loss: the negated log-likelihood (nats) of each label sequence, summed over the
      alignments inside the windows, reduced as ``reduction`` says.
    """
    kw = dict(
        boundary=boundary, rnnt_type=rnnt_type, delay_penalty=delay_penalty, reduction=reduction
    )
    ext = _external(logits)
    if ext is not None:
        return ext.rnnt_loss_pruned(
            logits=logits,
            symbols=symbols,
            ranges=ranges,
            termination_symbol=termination_symbol,
            **kw,
        )
    return _L.rnnt_loss_pruned(logits, symbols, ranges, termination_symbol, **kw)


def rnnt_loss(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
) -> Tensor:
    """RNN-T loss on the full joiner output (every frame with every context) (k2's).

    Memory grows as B * T * (S+1) * C; the pruned loss (:func:`rnnt_loss_pruned`) is the
    affordable form for training.

    Args:
      logits: (B, T, S+1, C) float32 or float64: the joiner's output for frame t and label
        context s, unnormalised.
      symbols: (B, S) integer tensor (int64; other integer dtypes are converted). The
        label sequences, padded to the longest length S. Values must lie in [0, C), also in
        the padding; a sequence's true length is given by ``boundary``.
      termination_symbol: the blank id (usually 0). Emitting it moves to the next frame
        without adding a label.
      boundary: (B, 4) int64, or None. Row b is ``[s_begin, t_begin, s_end, t_end]``: the
        lattice of sequence b starts after ``s_begin`` labels at frame ``t_begin`` and must end
        after ``s_end`` labels at frame ``t_end``; usually ``[0, 0, label length, frame count]``.
        None means ``[0, 0, S, T]`` for every sequence.
      rnnt_type: which alignments the lattice allows. ``"regular"``: only blank moves to
        the next frame, so a frame may emit any number of labels. ``"modified"``: every
        emission, blank or label, moves to the next frame (at most one label per frame; each
        sequence needs no more labels than frames). ``"constrained"``: the frames advance as in
        ``"modified"``, and a label emitted at frame t is scored together with the blank that
        follows it in the new context at the same frame.
      delay_penalty: >= 0 (0: none). Adds ``delay_penalty * ((T_b - 1) / 2 - t)`` to the
        log-prob of every label emitted at frame t (``T_b``: the sequence's ``t_end``, T
        without ``boundary``), which favours alignments that emit labels early (lower latency
        of streaming models).
      reduction: ``"none"``: a (B,) tensor, one loss per sequence; ``"mean"`` / ``"sum"``:
        their mean / sum over the batch (a scalar).
    Returns:
      The loss: the negated log-likelihood (nats) of each label sequence, summed over all
      alignments, reduced as ``reduction`` says.
    """
    kw = dict(
        boundary=boundary, rnnt_type=rnnt_type, delay_penalty=delay_penalty, reduction=reduction
    )
    ext = _external(logits)
    if ext is not None:
        return ext.rnnt_loss(
            logits=logits, symbols=symbols, termination_symbol=termination_symbol, **kw
        )
    return _L.rnnt_loss(logits, symbols, termination_symbol, **kw)
