"""gmot: Mandarin end-to-end ASR with graph-matching optimal transport (GM-OT).

The package is a library of small modules (see README.md and docs/architecture.md):
``gmot.ot`` (GM-OT), ``gmot.plm`` (PLM teacher), ``gmot.transducer`` (pruned RNN-T),
``gmot.models`` (Zipformer and the ASR model), ``gmot.optim``, ``gmot.decoding``,
``gmot.data`` and ``gmot.training``. Importing ``gmot`` itself is cheap: sub-packages are
imported on demand.
"""

from gmot.env import env_info, format_env_info

__version__ = "0.1.0"
__all__ = ["env_info", "format_env_info", "__version__"]
