"""Pruned RNN-T with k2's API (k2 or fast_rnnt when importable, builtin kernels otherwise), plus
the stateless decoder and the joiner.

Public API:

- losses: :func:`rnnt_loss_simple`, :func:`rnnt_loss_smoothed`, :func:`rnnt_loss_pruned`,
  :func:`rnnt_loss` (full joint), :func:`mutual_information_recursion`,
  :func:`joint_mutual_information_recursion`;
- lattice log-probs: :func:`get_rnnt_logprobs` (k2's order: ``rnnt_type`` before ``boundary``),
  :func:`get_rnnt_logprobs_smoothed`, :func:`get_rnnt_logprobs_joint`,
  :func:`get_rnnt_logprobs_pruned`;
- pruning: :func:`get_rnnt_prune_ranges`, :func:`do_rnnt_pruning`;
- backend: :func:`set_rnnt_backend`, :func:`get_rnnt_backend`, :func:`available_rnnt_backends`,
  :func:`backend_available`, :func:`backend_runs_on`, :func:`add_rnnt_backend_argument`
  (``--rnnt-backend auto|k2|fast_rnnt|builtin``; without the flag the environment variable
  ``GMOT_RNNT_BACKEND`` chooses);
- modules: :class:`Decoder` (stateless prediction network), :class:`Joiner`.

All losses take ``delay_penalty``, ``boundary`` (B, 4) ``[s_begin, t_begin, s_end, t_end]``,
``rnnt_type`` ("regular", "modified", "constrained") and ``reduction`` ("none", "mean", "sum")
with k2's meanings; see :mod:`gmot.transducer.losses`.
"""

from gmot.transducer.api import (
    do_rnnt_pruning,
    get_rnnt_logprobs,
    get_rnnt_logprobs_joint,
    get_rnnt_logprobs_pruned,
    get_rnnt_logprobs_smoothed,
    get_rnnt_prune_ranges,
    joint_mutual_information_recursion,
    mutual_information_recursion,
    rnnt_loss,
    rnnt_loss_pruned,
    rnnt_loss_simple,
    rnnt_loss_smoothed,
)
from gmot.transducer.backend import (
    add_rnnt_backend_argument,
    available_rnnt_backends,
    backend_available,
    backend_runs_on,
    get_rnnt_backend,
    k2_available,
    set_rnnt_backend,
)
from gmot.transducer.decoder import Decoder
from gmot.transducer.joiner import Joiner

__all__ = [
    "Decoder",
    "Joiner",
    "add_rnnt_backend_argument",
    "available_rnnt_backends",
    "backend_available",
    "backend_runs_on",
    "do_rnnt_pruning",
    "get_rnnt_backend",
    "get_rnnt_logprobs",
    "get_rnnt_logprobs_joint",
    "get_rnnt_logprobs_pruned",
    "get_rnnt_logprobs_smoothed",
    "get_rnnt_prune_ranges",
    "joint_mutual_information_recursion",
    "k2_available",
    "mutual_information_recursion",
    "rnnt_loss",
    "rnnt_loss_pruned",
    "rnnt_loss_simple",
    "rnnt_loss_smoothed",
    "set_rnnt_backend",
]
