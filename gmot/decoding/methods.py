"""Decoding methods: the one registry that ``decode.py`` and ``pretrained.py`` read.

Each method is a :class:`DecodingMethod` in :data:`REGISTRY`: its name (the value of
``--decoding-method`` and the folder of its result files), the model heads it needs, a one-line
help (shown by ``--help``), the search it runs on the encoder output, and the options that name
its result files (``recogs-<set>-<setting>-<suffix>.txt``, see :meth:`DecodingMethod.setting_name`).

Adding a method is one entry in ``_ENTRIES`` (plus, for a new option, its flag in
:func:`add_decoding_method_arguments`); the choices, the help, the dispatch in
:func:`decode_batch` and the result-file names of both scripts follow from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gmot.data.tokens import TokenTable
from gmot.decoding.ctc_search import ctc_greedy_search, ctc_prefix_beam_search
from gmot.decoding.k2_search import fast_beam_search, require_k2
from gmot.decoding.ngram_lm import NgramLm, NgramLmScorer
from gmot.decoding.rescoring import CtcScorer, WeightedScorers, rescore_nbest
from gmot.decoding.transducer_search import beam_search, greedy_search_batch, modified_beam_search

#: head name -> (model attributes that must not be None, how an error message names the head)
HEADS: dict[str, tuple[tuple[str, ...], str]] = {
    "transducer": (("decoder", "joiner"), "a transducer head (decoder, joiner)"),
    "ctc": (("ctc_output",), "a CTC head (ctc_output)"),
    "attention": (("attention_decoder",), "an attention decoder"),
}

#: ``--ctc-joint`` values: the per-frame product of the two heads, or CTC prefix scores
#: (:mod:`gmot.decoding.ctc_prefix`); both for greedy_search and the modified beam searches.
CTC_JOINT_MODES = ("frame", "prefix")

#: (model, encoder_out (B, T, D), encoder_out_lens (B,), parsed flags) -> token ids per utterance
Search = Callable[[nn.Module, torch.Tensor, torch.Tensor, argparse.Namespace], list[list[int]]]


@dataclass(frozen=True)
class DecodingMethod:
    """One ``--decoding-method``.

    Attributes:
      name: the flag value; also the folder ``<exp-dir>/<name>/`` of its result files.
      heads: the model heads the search uses (keys of :data:`HEADS`).
      help: one line for ``--help``.
      search: the search on the encoder output (a :data:`Search`); reads its options from the
        parsed flags.
      setting_options: the flags (as ``params`` attributes) that name the result files, in order:
        the setting is ``<name>_<option>_<value>...`` (see :meth:`setting_name`).
      requires: optional check of an optional dependency (k2), run before anything is loaded;
        raises with an explanation when it is missing.
      uses_blank_penalty: the search honours ``--blank-penalty`` (named in the result files
        when not 0; other methods refuse a non-zero value).
      uses_ctc_weight: the search honours ``--ctc-weight`` (joint CTC / transducer scoring;
        named in the result files when not 0, needs the CTC head then; other methods refuse a
        non-zero value).
      uses_lm: the search honours ``--lm-scale`` / ``--lm-path`` (an n-gram LM: fused frame
        by frame in greedy and modified beam search, added in rescoring; named in the result
        files when not 0; other methods refuse it).
    """

    name: str
    heads: tuple[str, ...]
    help: str
    search: Search
    setting_options: tuple[str, ...] = ()
    requires: Callable[[], object] | None = None
    uses_blank_penalty: bool = False
    uses_ctc_weight: bool = False
    uses_lm: bool = False

    def setting_name(self, params: argparse.Namespace) -> str:
        """``greedy_search_max_sym_per_frame_1``: the method and its naming options' values."""
        name = self.name + "".join(f"_{o}_{getattr(params, o)}" for o in self.setting_options)
        # options named only when not 0, refused by the methods that ignore them
        both = "greedy_search and modified_beam_search"
        rescored = "modified_beam_search_ctc_rescoring"
        both_r = f"{both} ({rescored})"
        for key, value, used, where in (
            ("blank_penalty", _blank_penalty(params), self.uses_blank_penalty, both_r),
            ("ctc_weight", _ctc_weight(params), self.uses_ctc_weight, both_r),
            ("lm_scale", _lm_scale(params), self.uses_lm, both_r),
        ):  # fmt: skip
            if not value:
                continue
            if not used:
                raise ValueError(
                    f"--{key.replace('_', '-')} applies to {where}, "
                    f"not to --decoding-method {self.name}"
                )
            name += f"_{key}_{value}"
        if _ctc_weight(params) and _ctc_joint(params) == "prefix":
            name += "_ctc_joint_prefix"  # only the methods that take --ctc-weight get here
        return name

    def check_model(self, model: nn.Module, params: argparse.Namespace | None = None) -> None:
        """Raise ValueError when ``model`` lacks a head this method (with ``params``' options:
        a non-zero ``--ctc-weight`` needs the CTC head) needs."""
        heads = self.heads
        if params is not None and self.uses_ctc_weight and _ctc_weight(params):
            heads = (*heads, "ctc")
        for head in heads:
            attrs, what = HEADS[head]
            # decode_batch takes any model with forward_encoder (a transducer-only model may have
            # no ctc_output / attention_decoder attribute at all), hence getattr
            if any(getattr(model, a, None) is None for a in attrs):
                raise ValueError(f"--decoding-method {self.name} needs a model with {what}")

    def check_available(self) -> None:
        """Fail early (before loading a model) when an optional dependency is missing."""
        if self.requires is not None:
            self.requires()


# ------------------------------------------------------------------------------------ searches
def _blank_penalty(p: argparse.Namespace) -> float:
    return float(getattr(p, "blank_penalty", 0.0))


def _ctc_weight(p: argparse.Namespace) -> float:
    w = float(getattr(p, "ctc_weight", 0.0))
    if w < 0:
        raise ValueError(f"--ctc-weight must be >= 0, got {w}")
    return w


def _fusion(p) -> dict:
    """``lm`` / ``lm_scale`` keyword arguments of the transducer searches (LM fusion)."""
    scale = _lm_scale(p)
    return {"lm": _lm_scorer(p), "lm_scale": scale} if scale else {}


def _ctc_joint(p) -> str:
    """``--ctc-joint``: how --ctc-weight joins the CTC head ("frame" or "prefix")."""
    mode = getattr(p, "ctc_joint", "prefix") or "prefix"
    if mode not in CTC_JOINT_MODES:
        raise ValueError(f"--ctc-joint must be one of {', '.join(CTC_JOINT_MODES)}, got {mode!r}")
    return mode


def _joint_kwargs(p, ctc_log_probs: torch.Tensor | None) -> dict:
    """The transducer searches' joint-scoring arguments for --ctc-weight / --ctc-joint from
    the CTC head's (B, T, V) log-probabilities (None: weight 0, no CTC)."""
    w = _ctc_weight(p)
    if not w:
        return {}
    if _ctc_joint(p) == "prefix":
        return {"ctc_log_probs": ctc_log_probs, "ctc_prefix_weight": w}
    return {"ctc_scores": w * ctc_log_probs}


def _ctc_log_probs(model, enc, p) -> torch.Tensor | None:
    return model.ctc_output(enc) if _ctc_weight(p) else None


def _greedy(model, enc, lens, p):
    return greedy_search_batch(
        model,
        enc,
        lens,
        p.max_sym_per_frame,
        _blank_penalty(p),
        **_joint_kwargs(p, _ctc_log_probs(model, enc, p)),
        **_fusion(p),
    )


def _beam(model, enc, lens, p):
    return beam_search(model, enc, lens, p.beam_size, max(3, p.max_sym_per_frame))


def _modified_beam(model, enc, lens, p):
    return modified_beam_search(
        model,
        enc,
        lens,
        p.beam_size,
        blank_penalty=_blank_penalty(p),
        **_joint_kwargs(p, _ctc_log_probs(model, enc, p)),
        **_fusion(p),
    )


def _fast_beam(model, enc, lens, p):
    return fast_beam_search(
        model, enc, lens, beam=p.beam, max_states=p.max_states, max_contexts=p.max_contexts
    )


def _ctc_greedy(model, enc, lens, p):
    return ctc_greedy_search(model.ctc_output(enc), lens)  # log-probs (B, T, V)


def _ctc_prefix_beam(model, enc, lens, p):
    return ctc_prefix_beam_search(model.ctc_output(enc), lens, p.beam_size)


def _ctc_nbest(model, enc, lens, p):
    return ctc_prefix_beam_search(model.ctc_output(enc), lens, p.beam_size, return_nbest=True)


def _modified_beam_nbest(model, enc, lens, p):
    return modified_beam_search(
        model, enc, lens, p.beam_size, return_nbest=True, blank_penalty=_blank_penalty(p)
    )


def _rescored(first_pass: Search) -> Search:
    """``first_pass`` n-best lists rescored with the attention decoder (``--attention-scale``)."""

    def search(model, enc, lens, p):
        nbest = first_pass(model, enc, lens, p)
        return rescore_nbest(
            model.attention_decoder, enc, lens, nbest, attention_scale=p.attention_scale
        )

    return search


def _modified_beam_ctc_rescored(model, enc, lens, p):
    """n-best of modified_beam_search (joint with --ctc-weight when not 0), rescored with
    --ctc-rescore-scale times the CTC head's whole-sequence log-likelihood."""
    # the CTC head runs once per batch: its (B, T, V) log-probabilities serve the joint first
    # pass and, as the rows the rescorer repeats per hypothesis, the sequence scores
    ctc_log_probs = model.ctc_output(enc)
    nbest = modified_beam_search(
        model,
        enc,
        lens,
        p.beam_size,
        return_nbest=True,
        blank_penalty=_blank_penalty(p),
        **_joint_kwargs(p, ctc_log_probs),
    )
    scorers = [(CtcScorer(nn.Identity(), getattr(model, "blank_id", 0)), p.ctc_rescore_scale)]
    if _lm_scale(p):
        scorers.append((_lm_scorer(p), _lm_scale(p)))
    # weights of 0 are dropped by WeightedScorers, so a scale of 0 ignores that scorer entirely
    return rescore_nbest(WeightedScorers(scorers), ctc_log_probs, lens, nbest)


def _lm_scale(p) -> float:
    return float(getattr(p, "lm_scale", 0.0) or 0.0)


_LM_CACHE: dict[tuple[str, str], NgramLmScorer] = {}


def _lm_scorer(p) -> NgramLmScorer:
    """The ``--lm-path`` n-gram LM over the token table's symbols (loaded once)."""
    if not getattr(p, "lm_path", None):
        raise ValueError("--lm-scale is not 0 but no --lm-path (an ARPA n-gram LM) was given")
    tokens = getattr(p, "tokens", None) or Path(p.lang_dir) / "tokens.txt"
    key = (str(p.lm_path), str(tokens))
    if key not in _LM_CACHE:
        _LM_CACHE[key] = NgramLmScorer(
            NgramLm.read_arpa(p.lm_path), TokenTable.load(tokens).symbols
        )
    return _LM_CACHE[key]


# ------------------------------------------------------------------------------------ registry
_ENTRIES = (
    DecodingMethod(
        "greedy_search",
        ("transducer",),
        "batched transducer greedy search (at most --max-sym-per-frame symbols per frame; "
        "with --lm-scale, an n-gram LM fused on every frame)",
        _greedy,
        ("max_sym_per_frame",),
        uses_blank_penalty=True,
        uses_ctc_weight=True,
        uses_lm=True,
    ),
    DecodingMethod(
        "beam_search",
        ("transducer",),
        "standard RNN-T beam search, one utterance at a time (--beam-size; at most "
        "max(--max-sym-per-frame, 3) symbols per frame)",
        _beam,
        ("beam_size",),
    ),
    DecodingMethod(
        "modified_beam_search",
        ("transducer",),
        "batched transducer beam search, one symbol per frame (--beam-size; with --lm-scale, "
        "an n-gram LM fused on every frame)",
        _modified_beam,
        ("beam_size",),
        uses_blank_penalty=True,
        uses_ctc_weight=True,
        uses_lm=True,
    ),
    DecodingMethod(
        "fast_beam_search",
        ("transducer",),
        "k2's FSA-based transducer beam search (needs k2; --beam, --max-contexts, --max-states)",
        _fast_beam,
        ("beam", "max_contexts"),
        requires=require_k2,
    ),
    DecodingMethod(
        "ctc_greedy_search",
        ("ctc",),
        "best path of the CTC head",
        _ctc_greedy,
    ),
    DecodingMethod(
        "ctc_prefix_beam_search",
        ("ctc",),
        "CTC prefix beam search (--beam-size)",
        _ctc_prefix_beam,
        ("beam_size",),
    ),
    DecodingMethod(
        "ctc_prefix_beam_search_attention_rescoring",
        ("ctc", "attention"),
        "n-best (--beam-size) from CTC prefix beam search rescored with the attention decoder "
        "(--attention-scale)",
        _rescored(_ctc_nbest),
        ("beam_size", "attention_scale"),
    ),
    DecodingMethod(
        "modified_beam_search_attention_rescoring",
        ("transducer", "attention"),
        "n-best (--beam-size) from modified_beam_search rescored with the attention decoder "
        "(--attention-scale)",
        _rescored(_modified_beam_nbest),
        ("beam_size", "attention_scale"),
        uses_blank_penalty=True,
    ),
    DecodingMethod(
        "modified_beam_search_ctc_rescoring",
        ("transducer", "ctc"),
        "n-best (--beam-size) from modified_beam_search (joint with --ctc-weight when not 0) "
        "rescored with --ctc-rescore-scale times the CTC head's log-likelihood of the whole "
        "sequence (every alignment, not frame by frame), plus --lm-scale times an n-gram LM's "
        "(--lm-path) when not 0",
        _modified_beam_ctc_rescored,
        ("beam_size", "ctc_rescore_scale"),
        uses_blank_penalty=True,
        uses_ctc_weight=True,
        uses_lm=True,
    ),
)


def _build_registry(entries: tuple[DecodingMethod, ...]) -> dict[str, DecodingMethod]:
    registry: dict[str, DecodingMethod] = {}
    for m in entries:
        if m.name in registry:
            raise ValueError(f"decoding method {m.name!r} is registered twice")
        unknown = set(m.heads) - set(HEADS)
        if unknown:
            raise ValueError(f"decoding method {m.name!r}: unknown heads {sorted(unknown)}")
        registry[m.name] = m
    return registry


#: name -> method, in the order ``--help`` lists them.
REGISTRY: dict[str, DecodingMethod] = _build_registry(_ENTRIES)
#: every method name (the choices of ``--decoding-method``).
METHODS: tuple[str, ...] = tuple(REGISTRY)


def get_method(name: str) -> DecodingMethod:
    """The registered method ``name``; ValueError listing the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"--decoding-method {name!r} is not one of {', '.join(METHODS)}") from None


def methods_help() -> str:
    """``--decoding-method``'s help: ``name: help`` per registered method."""
    return "; ".join(f"{m.name}: {m.help}" for m in REGISTRY.values()) + "."


def add_blank_penalty_argument(parser) -> None:
    """``--blank-penalty`` (decode.py, streaming_decode.py, pretrained.py)."""
    parser.add_argument(
        "--blank-penalty",
        type=float,
        default=0.0,
        help="Subtracted from the blank logit in greedy_search and the modified beam searches "
        "(icefall's flag): > 0 makes the transducer emit more, against deletions; named in the "
        "result files when not 0.",
    )


def add_decoding_method_arguments(parser) -> None:
    """``--decoding-method`` and the search options, for decode.py and pretrained.py.

    ``parser``: an ``argparse.ArgumentParser`` or an argument group of one.
    """
    parser.add_argument(
        "--decoding-method", default="greedy_search", choices=METHODS, help=methods_help()
    )
    parser.add_argument(
        "--beam-size", type=int, default=4, help="Beam for beam searches; n-best size."
    )
    parser.add_argument(
        "--max-sym-per-frame",
        type=int,
        default=1,
        help="Most symbols per frame for greedy_search (beam_search uses max(this, 3)).",
    )
    add_blank_penalty_argument(parser)
    parser.add_argument(
        "--ctc-weight",
        type=float,
        default=0.0,
        help="greedy_search and modified_beam_search: add this weight times the CTC head's "
        "log-probabilities to the transducer's on every frame (joint scoring; needs a model "
        "trained with --use-ctc 1). 0: the transducer alone. Named in the result files when "
        "not 0.",
    )
    parser.add_argument(
        "--ctc-joint",
        default="prefix",
        choices=CTC_JOINT_MODES,
        help="How --ctc-weight joins the CTC head in greedy_search and the modified beam "
        "searches. prefix (default): the change of the CTC probability of the hypothesis so "
        "far (CTC prefix scores), so that a character the transducer emits a few frames away "
        "from the CTC spike is not emitted twice. frame: the CTC head's log-probability of the "
        "same symbol on the same frame (gmot's joint scoring before 2026-12-08; result files "
        "without a ctc_joint part were made with it). Named in the result files when prefix.",
    )
    parser.add_argument(
        "--ctc-rescore-scale",
        type=float,
        default=1.0,
        help="Weight of the CTC head's whole-sequence log-likelihood in "
        "modified_beam_search_ctc_rescoring (first-pass weight 1).",
    )
    parser.add_argument(
        "--lm-path",
        default=None,
        help="An ARPA n-gram LM over the token table's symbols (e.g. data/lm/char_2gram.arpa "
        "from prepare.sh) for greedy_search, modified_beam_search (fusion) and "
        "modified_beam_search_ctc_rescoring (rescoring); used when --lm-scale is not 0.",
    )
    parser.add_argument(
        "--lm-scale",
        type=float,
        default=0.0,
        help="Weight of the --lm-path LM's natural-log probability. greedy_search and "
        "modified_beam_search: of each next character, on every frame; the LM only re-ranks "
        "the characters, blank and the total emission probability stay the acoustic model's. "
        "modified_beam_search_ctc_rescoring: of each whole hypothesis (with </s>) in the "
        "rescoring. 0: no LM. Named in the result files when not 0.",
    )
    parser.add_argument("--beam", type=float, default=20.0, help="fast_beam_search: log-prob beam.")
    parser.add_argument("--max-contexts", type=int, default=8, help="fast_beam_search: contexts.")
    parser.add_argument("--max-states", type=int, default=64, help="fast_beam_search: states.")
    parser.add_argument(
        "--attention-scale",
        type=float,
        default=1.0,
        help="Weight of the attention-decoder log-likelihood in *_attention_rescoring "
        "(first-pass weight 1).",
    )


@torch.no_grad()
def decode_batch(
    model: nn.Module,
    features: torch.Tensor,
    feature_lens: torch.Tensor,
    params: argparse.Namespace,
) -> list[list[int]]:
    """Run the encoder and the search ``params.decoding_method`` on one batch.

    Args:
      model: a model with ``forward_encoder`` and the heads the method needs (an
        :class:`gmot.models.asr_model.AsrModel`).
      features: (B, T, 80) fbank features, zero-padded.
      feature_lens: (B,) int64 frames per utterance.
      params: parsed flags: ``decoding_method`` and the options its search reads.
    Returns:
      token ids (without blanks) per utterance.
    Raises:
      ValueError for an unknown method (listing the known ones) or a model without a head the
      method needs.
    """
    method = get_method(params.decoding_method)
    method.check_model(model, params)
    encoder_out, encoder_out_lens = model.forward_encoder(features, feature_lens)
    return method.search(model, encoder_out, encoder_out_lens, params)
