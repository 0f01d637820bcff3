"""Decoding: transducer and CTC search, rescoring (attention decoder, CTC, n-gram LM), CER scoring.

Entry points: :mod:`gmot.decoding.decode_main` (``decode.py``),
:mod:`gmot.decoding.streaming_decode_main` (``streaming_decode.py``: causal models chunk by chunk,
with :mod:`gmot.decoding.streaming`) and :mod:`gmot.decoding.pretrained_main` (``pretrained.py``).
"""

from gmot.decoding.ctc_search import ctc_greedy_search, ctc_prefix_beam_search
from gmot.decoding.k2_search import fast_beam_search
from gmot.decoding.ngram_lm import NgramLm, NgramLmScorer, train_ngram
from gmot.decoding.rescoring import (
    AttentionScorer,
    CtcScorer,
    WeightedScorers,
    ctc_sequence_log_probs,
    rescore_nbest,
)
from gmot.decoding.scoring import (
    ErrorCounts,
    compute_cer,
    count_errors,
    save_results,
    store_transcripts,
    text_to_units,
    write_error_stats,
)
from gmot.decoding.transducer_search import (
    TokenLm,
    beam_search,
    fuse_lm,
    greedy_search,
    greedy_search_batch,
    modified_beam_search,
)

__all__ = [
    "AttentionScorer",
    "CtcScorer",
    "ErrorCounts",
    "NgramLm",
    "NgramLmScorer",
    "TokenLm",
    "WeightedScorers",
    "beam_search",
    "compute_cer",
    "count_errors",
    "ctc_greedy_search",
    "ctc_prefix_beam_search",
    "ctc_sequence_log_probs",
    "fast_beam_search",
    "fuse_lm",
    "greedy_search",
    "greedy_search_batch",
    "modified_beam_search",
    "rescore_nbest",
    "save_results",
    "store_transcripts",
    "text_to_units",
    "train_ngram",
    "write_error_stats",
]
