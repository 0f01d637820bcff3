"""``decode.py``: decode test sets with a trained model and score them (CER).

Usage (from a recipe folder, e.g. egs/hsk/ASR)::

    ./zipformer_gmot/decode.py --epoch 30 --avg 9 --use-averaged-model 1 \\
        --exp-dir zipformer_gmot/exp --decoding-method modified_beam_search --beam-size 4

Writes, per test set, into ``<exp-dir>/<decoding-method>/``:
``recogs-<set>-<setting>-<suffix>.txt``, ``errs-...`` and ``wer-summary-<set>-<suffix>.txt``,
and logs the CER and the real-time factor (decoding wall time, encoder included, / audio
duration). The files of this setting are deleted before anything is decoded, so a failed run
leaves none from an earlier one. Cuts shorter than the encoder's minimum input (9 fbank frames,
0.09 s) are skipped: each is logged, and they are counted and listed in the result files.
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from pathlib import Path

import torch
from torch import nn

from gmot.cli import add_lang_dir_argument
from gmot.data.tokens import TokenTable
from gmot.decoding.ctc_search import ctc_greedy_search, ctc_prefix_beam_search
from gmot.decoding.features import FRAME_SHIFT_S, cut_batches, describe_short, too_short
from gmot.decoding.model_loading import add_model_loading_arguments, load_model
from gmot.decoding.rescoring import rescore_nbest
from gmot.decoding.scoring import result_paths, save_results
from gmot.decoding.transducer_search import (
    beam_search,
    fast_beam_search,
    greedy_search_batch,
    modified_beam_search,
)

TRANSDUCER_METHODS = ("greedy_search", "beam_search", "modified_beam_search", "fast_beam_search")
CTC_METHODS = ("ctc_greedy_search", "ctc_prefix_beam_search")
RESCORING_METHODS = (
    "ctc_prefix_beam_search_attention_rescoring",
    "modified_beam_search_attention_rescoring",
)
METHODS = TRANSDUCER_METHODS + CTC_METHODS + RESCORING_METHODS


def _data_module_class():
    try:
        from gmot.data import AsrDataModule
    except ImportError:
        return None
    return AsrDataModule


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("decoding")
    g.add_argument(
        "--decoding-method",
        default="greedy_search",
        choices=METHODS,
        help="greedy_search: batched transducer greedy (--max-sym-per-frame); beam_search: "
        "standard RNN-T beam search per utterance; modified_beam_search: batched, one symbol "
        "per frame; fast_beam_search: k2 FSA-based (needs k2); ctc_greedy_search / "
        "ctc_prefix_beam_search: the CTC head; *_attention_rescoring: n-best (--beam-size) "
        "from CTC prefix beam / modified beam search rescored with the attention decoder.",
    )
    g.add_argument("--beam-size", type=int, default=4, help="Beam for beam searches; n-best size.")
    g.add_argument(
        "--max-sym-per-frame",
        type=int,
        default=1,
        help="Most symbols per frame for greedy_search (beam_search uses max(this, 3)).",
    )
    g.add_argument("--beam", type=float, default=20.0, help="fast_beam_search: log-prob beam.")
    g.add_argument("--max-contexts", type=int, default=8, help="fast_beam_search: contexts.")
    g.add_argument("--max-states", type=int, default=64, help="fast_beam_search: states.")
    g.add_argument(
        "--attention-scale",
        type=float,
        default=1.0,
        help="Weight of the attention-decoder log-likelihood (first-pass weight 1).",
    )
    add_lang_dir_argument(g)
    g.add_argument(
        "--test-cuts",
        type=Path,
        nargs="+",
        default=[
            Path("data/manifests/hsk_cuts_dev.jsonl.gz"),
            Path("data/manifests/hsk_cuts_test.jsonl.gz"),
        ],
        help="Cut manifests to decode; the set name is the part after '_cuts_' in the file name.",
    )
    g.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="Device (cpu, cuda, cuda:1, ...).",
    )


def get_parser(**defaults) -> argparse.ArgumentParser:
    """The decode.py parser; ``defaults`` override argument defaults (recipe settings)."""
    parser = argparse.ArgumentParser(
        description="Decode test sets with a gmot model and compute the CER.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        # the data module may define a flag we also define (e.g. --lang-dir): its wins
        conflict_handler="resolve",
    )
    add_model_loading_arguments(parser)
    add_decoding_arguments(parser)
    dm = _data_module_class()
    if dm is not None:
        dm.add_arguments(parser)
    else:
        parser.add_argument(
            "--max-duration", type=float, default=200.0, help="Seconds of audio per batch."
        )
    parser.set_defaults(**defaults)
    return parser


def cut_set_name(path: Path) -> str:
    """``data/manifests/hsk_cuts_test.jsonl.gz`` -> ``test``."""
    stem = re.sub(r"\.(jsonl|json|yaml)(\.gz)?$", "", Path(path).name)
    return stem.split("_cuts_", 1)[1] if "_cuts_" in stem else stem


def setting_name(params: argparse.Namespace) -> str:
    m = params.decoding_method
    if m == "greedy_search":
        return f"greedy_search_max_sym_per_frame_{params.max_sym_per_frame}"
    if m == "fast_beam_search":
        return f"fast_beam_search_beam_{params.beam}_max_contexts_{params.max_contexts}"
    if m in ("ctc_greedy_search",):
        return m
    if m in RESCORING_METHODS:
        return f"{m}_beam_size_{params.beam_size}_attention_scale_{params.attention_scale}"
    return f"{m}_beam_size_{params.beam_size}"


@torch.no_grad()
def decode_batch(
    model: nn.Module,
    features: torch.Tensor,
    feature_lens: torch.Tensor,
    params: argparse.Namespace,
) -> list[list[int]]:
    """Run the encoder on features (B, T, 80) / lens (B,) and the selected search."""
    m = params.decoding_method
    if m not in METHODS:
        raise ValueError(f"--decoding-method {m!r} is not one of {', '.join(METHODS)}")
    encoder_out, encoder_out_lens = model.forward_encoder(features, feature_lens)
    beam = params.beam_size
    if m == "greedy_search":
        return greedy_search_batch(model, encoder_out, encoder_out_lens, params.max_sym_per_frame)
    if m == "beam_search":
        return beam_search(
            model, encoder_out, encoder_out_lens, beam, max(3, params.max_sym_per_frame)
        )
    if m == "modified_beam_search":
        return modified_beam_search(model, encoder_out, encoder_out_lens, beam)
    if m == "fast_beam_search":
        return fast_beam_search(
            model,
            encoder_out,
            encoder_out_lens,
            beam=params.beam,
            max_states=params.max_states,
            max_contexts=params.max_contexts,
        )
    if m.startswith("ctc_"):
        if getattr(model, "ctc_output", None) is None:
            raise ValueError(f"--decoding-method {m} needs a model with a CTC head (ctc_output)")
        log_probs = model.ctc_output(encoder_out)  # (B, T, V)
        if m == "ctc_greedy_search":
            return ctc_greedy_search(log_probs, encoder_out_lens)
        nbest = ctc_prefix_beam_search(
            log_probs, encoder_out_lens, beam, return_nbest=m in RESCORING_METHODS
        )
        if m == "ctc_prefix_beam_search":
            return nbest
    else:  # modified_beam_search_attention_rescoring
        nbest = modified_beam_search(model, encoder_out, encoder_out_lens, beam, return_nbest=True)
    if getattr(model, "attention_decoder", None) is None:
        raise ValueError(f"--decoding-method {m} needs a model with an attention decoder")
    return rescore_nbest(
        model.attention_decoder,
        encoder_out,
        encoder_out_lens,
        nbest,
        attention_scale=params.attention_scale,
    )


def decode_dataset(
    dataloader, model: nn.Module, token_table, params: argparse.Namespace
) -> tuple[list[tuple[str, str, str]], float, float, list[str]]:
    """Decode every batch of ``dataloader`` (data-module batch dicts).

    Utterances shorter than the encoder's minimum input are left out of their batch and logged.

    Returns:
      (results: list of (cut_id, ref text, hyp text), audio seconds decoded, decoding seconds,
      skipped: one description per cut left out).
    """
    from tqdm import tqdm

    device = next(model.parameters()).device
    results = []
    skipped: list[str] = []
    audio_s = 0.0
    elapsed = 0.0
    for batch in tqdm(dataloader, desc=params.decoding_method, unit="batch"):
        lens = batch["feature_lens"]
        short = too_short(lens)
        for i in short:
            skipped.append(describe_short(f"cut {batch['cut_ids'][i]}", int(lens[i])))
            logging.warning("skipping %s", skipped[-1])
        keep = [i for i in range(len(lens)) if i not in set(short)]
        if not keep:
            continue
        lens = lens[keep]
        feats = batch["features"][keep, : int(lens.max())].to(device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        hyps = decode_batch(model, feats, lens.to(device), params)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed += time.perf_counter() - t0
        audio_s += float(lens.sum()) * FRAME_SHIFT_S
        for i, hyp in zip(keep, hyps):
            results.append((batch["cut_ids"][i], batch["texts"][i], token_table.decode(hyp)))
    return results, audio_s, elapsed, skipped


def main(argv: list[str] | None = None, **defaults) -> dict[str, float]:
    """Parse ``argv`` (with recipe ``defaults``), decode each test set, write result files.

    Returns {test set name: CER in percent}.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    if params.decoding_method == "fast_beam_search":
        from gmot.decoding.transducer_search import require_k2

        require_k2()  # fail before loading anything
    device = torch.device(params.device)
    token_table = TokenTable.load(Path(params.lang_dir) / "tokens.txt")
    model, _, suffix = load_model(params, device)
    out_dir = Path(params.exp_dir) / params.decoding_method
    setting = setting_name(params)
    dm_cls = _data_module_class()
    data_module = dm_cls(params) if dm_cls is not None else None

    from lhotse import load_manifest_lazy

    for path in params.test_cuts:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--test-cuts: manifest not found: {path}")
    # an earlier run's files for this setting must not outlive a failure of this one
    for path in params.test_cuts:
        for old in result_paths(out_dir, cut_set_name(path), [setting], suffix):
            if old.is_file():
                old.unlink()
                logging.info("removed the earlier %s", old)
    cers = {}
    for path in params.test_cuts:
        name = cut_set_name(path)
        cuts = load_manifest_lazy(path)
        if data_module is not None:
            dl = data_module.test_dataloader(cuts)
        else:
            dl = cut_batches(cuts, params.max_duration)
        results, audio_s, elapsed, skipped = decode_dataset(dl, model, token_table, params)
        rates = save_results(out_dir, name, {setting: results}, suffix, skipped=skipped)
        cers[name] = rates[setting]
        rtf = elapsed / audio_s if audio_s > 0 else float("nan")
        logging.info(
            "%s %s: CER %.2f%% over %d cuts; %.1f s audio in %.1f s, RTF %.4f (%s)",
            name,
            setting,
            rates[setting],
            len(results),
            audio_s,
            elapsed,
            rtf,
            device,
        )
        if skipped:
            logging.warning(
                "%s: %d of %d cuts skipped as too short to decode (not in the CER; listed in %s)",
                name,
                len(skipped),
                len(skipped) + len(results),
                out_dir / f"errs-{name}-{setting}-{suffix}.txt",
            )
    logging.info("results in %s", out_dir)
    return cers
