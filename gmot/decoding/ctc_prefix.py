"""Frame-synchronous CTC prefix scores for joint CTC / transducer search (greedy and beam).

The per-frame product of the two heads (``--ctc-weight``, :mod:`gmot.decoding.transducer_search`)
scores a decision on frame t with the CTC head's probability of the same symbol on the same
frame. The CTC head marks each character on one frame (a spike), the transducer emits it on a
frame of its own choosing; where the two frames differ, the transducer's emission and the CTC
spike both come out and the character is doubled (``汉语语``, ``怎怎么``: most of the joint
search's insertions on the hsk demo).

Here the CTC contribution is instead the change of a *sequence* probability. For a hypothesis
``h`` (the characters emitted so far) let ``P_t(h)`` be the CTC probability that frames
``0..t`` collapse to exactly ``h`` (the forward algorithm over the CTC lattice of ``h``:
states blank, h_1, blank, h_2, ..., h_U, blank). On frame t,

* blank (keep ``h``) scores ``w * (log P_t(h) - log P_{t-1}(h))``;
* emitting ``y`` scores ``w * (log P_t(h + y) - log P_{t-1}(h))``, where ``h + y`` gets ``y``
  on frame t (its earlier starts are not tracked: a hypothesis that did not emit ``y`` before
  frame t never held it).

Once ``h + y`` is chosen its lattice goes on with the forward recursion, so a CTC spike for
``y`` on a later frame is absorbed as another alignment of the same ``y`` (blank then scores
high there) instead of being read as a second ``y``. With a large weight the decisions follow
the CTC head's own best prefix; with weight 0 they are the transducer's alone.
:class:`CtcPrefixLattice` holds the lattices of greedy search's rows; modified beam search keeps
one lattice per hypothesis and calls :func:`decision_scores` and :func:`push_labels` itself.

All scores are natural logs; at most one symbol per frame gets CTC support (a CTC alignment
has one label per frame), so a second symbol on the same frame scores ``-inf`` from the CTC
side.
"""

from __future__ import annotations

import torch

__all__ = ["CtcPrefixLattice", "decision_scores", "initial_lattice", "prefix_end", "push_labels"]

_NEG = float("-inf")


def initial_lattice(
    N: int, max_labels: int, blank_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``N`` empty hypotheses' lattices before frame 0: ``alpha`` (N, S) log-probabilities
    (state 0 = 0, the rest -inf), ``sym`` (N, S) each state's symbol (blank on even states;
    labels filled in as emitted) and ``n_lab`` (N,) label counts; S = 2 * max_labels + 1."""
    S = 2 * max_labels + 1
    alpha = torch.full((N, S), _NEG, device=device)
    alpha[:, 0] = 0.0
    sym = torch.full((N, S), blank_id, dtype=torch.int64, device=device)
    return alpha, sym, torch.zeros(N, dtype=torch.int64, device=device)


def prefix_end(alpha: torch.Tensor, n_lab: torch.Tensor) -> torch.Tensor:
    """(N,) log P(the frames so far collapse to exactly the labels): the last label's state
    plus the final blank's."""
    rows = torch.arange(alpha.shape[0], device=alpha.device)
    last_blank = alpha[rows, 2 * n_lab]
    last_label = alpha[rows, (2 * n_lab - 1).clamp(min=0)]
    last_label = torch.where(n_lab > 0, last_label, torch.full_like(last_label, _NEG))
    return torch.logaddexp(last_blank, last_label)


def _advance(
    alpha: torch.Tensor, sym: torch.Tensor, n_lab: torch.Tensor, lp_t: torch.Tensor, blank_id: int
) -> torch.Tensor:
    """The lattices (N, S) advanced over one frame with log-probabilities ``lp_t`` (N, V), no
    new label (the CTC forward recursion; states past the labels stay -inf)."""
    lp = lp_t.gather(1, sym)  # (N, S) log-prob of each state's symbol
    prev1 = torch.cat([torch.full_like(alpha[:, :1], _NEG), alpha[:, :-1]], dim=1)
    prev2 = torch.cat([torch.full_like(alpha[:, :2], _NEG), alpha[:, :-2]], dim=1)
    sym2 = torch.cat([torch.full_like(sym[:, :2], -1), sym[:, :-2]], dim=1)
    skip_ok = (sym != blank_id) & (sym != sym2)  # a label state that is not a repeat
    prev2 = torch.where(skip_ok, prev2, torch.full_like(prev2, _NEG))
    out = torch.logaddexp(torch.logaddexp(alpha, prev1), prev2) + lp
    used = torch.arange(alpha.shape[1], device=alpha.device) <= 2 * n_lab[:, None]
    return torch.where(used, out, torch.full_like(out, _NEG))


def decision_scores(
    alpha: torch.Tensor, sym: torch.Tensor, n_lab: torch.Tensor, lp_t: torch.Tensor, blank_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unweighted CTC scores of one frame's decisions, and the lattices after that frame.

    Args:
      alpha, sym, n_lab: (N, S), (N, S), (N,) the hypotheses' lattices before the frame.
      lp_t: (N, V) the CTC log-probabilities of the frame, one row per hypothesis.
      blank_id: the CTC blank.

    Returns:
      ``scores`` (N, V): column ``blank_id`` is ``log P_t(h) - log P_{t-1}(h)``, column ``y``
      is ``log P_t(h + y) - log P_{t-1}(h)`` with ``y`` starting on this frame (a repeat of
      the last label needs a blank between); ``alpha_t`` (N, S): the lattices of the kept
      hypotheses after the frame (give it to :func:`push_labels` for the rows that emit).
    """
    N, V = lp_t.shape
    rows = torch.arange(N, device=alpha.device)
    end_prev = prefix_end(alpha, n_lab)
    alpha_t = _advance(alpha, sym, n_lab, lp_t, blank_id)
    from_blank = alpha[rows, 2 * n_lab]  # any symbol may start after the final blank
    label_idx = (2 * n_lab - 1).clamp(min=0)
    from_label = torch.where(n_lab > 0, alpha[rows, label_idx], torch.full_like(from_blank, _NEG))
    start = torch.logaddexp(from_blank, from_label)[:, None].expand(N, V).clone()
    last = torch.where(n_lab > 0, sym[rows, label_idx], torch.full_like(n_lab, -1))
    has = last >= 0
    start[rows[has], last[has]] = from_blank[has]
    scores = start + lp_t - end_prev[:, None]
    scores[:, blank_id] = prefix_end(alpha_t, n_lab) - end_prev
    return scores, alpha_t


def push_labels(
    alpha_t: torch.Tensor,
    alpha: torch.Tensor,
    sym: torch.Tensor,
    n_lab: torch.Tensor,
    lp_t: torch.Tensor,
    rows: list[int],
    ys: list[int],
) -> None:
    """In place: rows ``rows`` emit ``ys`` on the frame that took ``alpha`` (before) to
    ``alpha_t`` (after, from :func:`decision_scores`); their lattices get the new label's
    state (started on this frame) and final blank, ``sym`` and ``n_lab`` follow."""
    for i, y in zip(rows, ys):
        u = int(n_lab[i])
        if 2 * u + 2 >= alpha.shape[1]:
            raise RuntimeError(f"CTC prefix lattice is full ({u} labels)")
        src = alpha[i, 2 * u]
        if u > 0 and int(sym[i, 2 * u - 1]) != y:
            src = torch.logaddexp(src, alpha[i, 2 * u - 1])
        alpha_t[i, 2 * u + 1] = src + lp_t[i, y]
        alpha_t[i, 2 * u + 2] = _NEG
        sym[i, 2 * u + 1] = y
        n_lab[i] = u + 1


class CtcPrefixLattice:
    """CTC forward lattices of a batch of growing hypotheses (one per row), advanced frame by
    frame: the state of joint greedy search with CTC prefix scores.

    Args:
      log_probs: (B, T, V) the CTC head's log-probabilities, rows in the order the search
        uses (greedy search sorts by length; the active rows at a frame are a prefix).
      weight: the CTC weight ``w`` (> 0).
      blank_id: the CTC blank.
      max_labels: the most labels a hypothesis can reach (the lattice is allocated for it).
    """

    def __init__(
        self, log_probs: torch.Tensor, weight: float, blank_id: int, max_labels: int
    ) -> None:
        assert log_probs.dim() == 3, f"log_probs must be (B, T, V); got {tuple(log_probs.shape)}"
        if weight <= 0:
            raise ValueError(f"CTC prefix weight must be > 0, got {weight}")
        self.log_probs = log_probs.float()
        self.weight = float(weight)
        self.blank_id = blank_id
        self.alpha, self.sym, self.num_labels = initial_lattice(
            log_probs.shape[0], max_labels, blank_id, log_probs.device
        )
        self._pending: torch.Tensor | None = None  # the lattices after the current frame
        self._frame = -1

    def total(self) -> torch.Tensor:
        """(B,) log P(the frames decided so far collapse to each row's hypothesis)."""
        return prefix_end(self.alpha, self.num_labels)

    def scores(self, n: int, t: int) -> torch.Tensor:
        """(n, V) weighted CTC scores of frame t's decisions for the first ``n`` rows
        (:func:`decision_scores`). The second and later decisions on one frame get 0 for
        blank and -inf for symbols (a CTC alignment has one label per frame)."""
        V = self.log_probs.shape[2]
        if t == self._frame:
            out = torch.full((n, V), _NEG, device=self.alpha.device)
            out[:, self.blank_id] = 0.0
            return out
        scores, self._pending = decision_scores(
            self.alpha[:n], self.sym[:n], self.num_labels[:n], self.log_probs[:n, t], self.blank_id
        )
        self._frame = t
        return self.weight * scores

    def commit(self, n: int, t: int, emitted: dict[int, int]) -> None:
        """Frame t decided for the first ``n`` rows: ``emitted[row] = symbol`` for rows that
        emitted one (the others kept their hypothesis)."""
        assert self._frame == t and self._pending is not None, "scores() first, then commit()"
        a_t = self._pending
        push_labels(
            a_t,
            self.alpha,
            self.sym,
            self.num_labels,
            self.log_probs[:, t],
            list(emitted),
            list(emitted.values()),
        )
        self.alpha[:n] = a_t
        self._pending = None
