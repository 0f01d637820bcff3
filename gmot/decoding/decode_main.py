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

A causal (streaming) model is decoded with its eval-time chunk masks (simulated streaming):
``--chunk-size`` / ``--left-context-frames`` choose them (default: the model's first values),
and the suffix of the result files names them (``...-chunk-32-left-128``). Chunk-by-chunk
decoding is ``streaming_decode.py`` (:mod:`gmot.decoding.streaming_decode_main`).
"""

from __future__ import annotations

import argparse
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gmot.cli import add_lang_dir_argument
from gmot.data import AsrDataModule
from gmot.data.pitch import input_dim
from gmot.data.tokens import TokenTable
from gmot.decoding.features import FRAME_SHIFT_S, describe_short, model_num_features, too_short
from gmot.decoding.methods import (
    METHODS,  # noqa: F401  (public name: every --decoding-method)
    REGISTRY,
    add_decoding_method_arguments,
    decode_batch,
    get_method,
)
from gmot.decoding.model_loading import (
    add_model_loading_arguments,
    checkpoint_description,
    load_model,
)
from gmot.decoding.scoring import forget_results, save_results
from gmot.decoding.streaming import add_chunk_arguments, apply_chunk_flags

# The methods by the heads they need (derived from the registry, gmot.decoding.methods).
TRANSDUCER_METHODS = tuple(n for n, m in REGISTRY.items() if m.heads == ("transducer",))
CTC_METHODS = tuple(n for n, m in REGISTRY.items() if m.heads == ("ctc",))
RESCORING_METHODS = tuple(n for n, m in REGISTRY.items() if "attention" in m.heads)


def add_test_set_arguments(g) -> None:
    """``--test-cuts`` and ``--device`` (an ``argparse`` parser or group; also streaming)."""
    g.add_argument(
        "--test-cuts",
        type=Path,
        nargs="+",
        default=None,
        help="Cut manifests to decode; the set name is the part after '_cuts_' in the file name. "
        "Not given: <manifest-dir>/<corpus>_cuts_dev.jsonl.gz and ..._test.jsonl.gz.",
    )
    g.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="Device (cpu, cuda, cuda:1, ...).",
    )


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("decoding")
    add_decoding_method_arguments(g)
    add_lang_dir_argument(g)
    add_test_set_arguments(g)
    add_chunk_arguments(parser.add_argument_group("simulated streaming (causal models)"))


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
    AsrDataModule.add_arguments(parser)
    parser.set_defaults(**defaults)
    return parser


def cut_set_name(path: Path) -> str:
    """``data/manifests/hsk_cuts_test.jsonl.gz`` -> ``test``."""
    stem = re.sub(r"\.(jsonl|json|yaml)(\.gz)?$", "", Path(path).name)
    return stem.split("_cuts_", 1)[1] if "_cuts_" in stem else stem


def setting_name(params: argparse.Namespace) -> str:
    """The name of this run's result files, e.g. ``greedy_search_max_sym_per_frame_1`` (the
    method's :meth:`~gmot.decoding.methods.DecodingMethod.setting_name`)."""
    return get_method(params.decoding_method).setting_name(params)


def cut_paths_to_decode(params: argparse.Namespace) -> list[Path]:
    """``--test-cuts``, or the dev and test cuts of ``--corpus`` in ``--manifest-dir``."""
    if params.test_cuts:
        return [Path(p) for p in params.test_cuts]
    if not params.corpus:
        raise ValueError(
            "give --test-cuts, or --corpus NAME for <manifest-dir>/<corpus>_cuts_{dev,test}"
            ".jsonl.gz (the recipe's decode.py sets --corpus)"
        )
    return [
        Path(params.manifest_dir) / f"{params.corpus}_cuts_{split}.jsonl.gz"
        for split in ("dev", "test")
    ]


def decodable(batch: dict, skipped: list[str]) -> list[int]:
    """Indices of the utterances of a data-module batch long enough for the encoder; the others
    are logged and described in ``skipped``."""
    lens = batch["feature_lens"]
    short = set(too_short(lens))
    for i in sorted(short):
        skipped.append(describe_short(f"cut {batch['cut_ids'][i]}", int(lens[i])))
        logging.warning("skipping %s", skipped[-1])
    return [i for i in range(len(lens)) if i not in short]


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
        keep = decodable(batch, skipped)
        if not keep:
            continue
        lens = batch["feature_lens"][keep]
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


#: (dataloader, model, token table, flags) -> (results, audio s, decoding s, skipped cuts)
DecodeDataset = Callable[
    [object, nn.Module, TokenTable, argparse.Namespace],
    tuple[list[tuple[str, str, str]], float, float, list[str]],
]


def decode_test_sets(
    params: argparse.Namespace,
    model: nn.Module,
    out_dir: Path,
    setting: str,
    suffix: str,
    decode: DecodeDataset | None = None,
) -> dict[str, float]:
    """Decode each of ``params.test_cuts`` with ``decode`` (default :func:`decode_dataset`) and
    write its result files into ``out_dir`` (this setting's earlier files are deleted first).

    Returns {set name: CER in percent}.
    """
    from lhotse import load_manifest_lazy

    decode = decode or decode_dataset

    token_table = TokenTable.load(Path(params.lang_dir) / "tokens.txt")
    # the features the model was trained on (fbank, or fbank + pitch), whatever --pitch says
    num_features = model_num_features(model)
    pitch = num_features == input_dim(True)
    if pitch != bool(getattr(params, "pitch", False)):
        logging.info("--pitch %d: the checkpoint's model reads %d features", pitch, num_features)
    params.pitch = pitch
    data_module = AsrDataModule(params)
    for path in params.test_cuts:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--test-cuts: manifest not found: {path}")
    # an earlier run's files and summary rows for this setting must not outlive a failure of
    # this one; the summary rows of other settings (another --ctc-weight, beam, ...) stay
    for path in params.test_cuts:
        for old in forget_results(out_dir, cut_set_name(path), [setting], suffix):
            logging.info("removed this setting's earlier results from %s", old)
    cers = {}
    device = next(model.parameters()).device
    for path in params.test_cuts:
        name = cut_set_name(path)
        dl = data_module.test_dataloader(load_manifest_lazy(path))
        results, audio_s, elapsed, skipped = decode(dl, model, token_table, params)
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


def main(argv: list[str] | None = None, **defaults) -> dict[str, float]:
    """Parse ``argv`` (with recipe ``defaults``), decode each test set, write result files.

    Returns {test set name: CER in percent}.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    get_method(params.decoding_method).check_available()  # fail before loading anything
    params.test_cuts = cut_paths_to_decode(params)
    model, _, suffix = load_model(params, torch.device(params.device))
    get_method(params.decoding_method).check_model(model, params)  # before any test set
    # a causal model: simulated streaming, its chunk and left context named in the files
    suffix += apply_chunk_flags(
        model, params.chunk_size, params.left_context_frames, checkpoint_description(params)
    )
    out_dir = Path(params.exp_dir) / params.decoding_method
    return decode_test_sets(params, model, out_dir, setting_name(params), suffix)
