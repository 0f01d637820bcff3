#!/usr/bin/env python3
"""Does a trained model use the audio? Score transcripts with their own, another's, and no audio.

Run from a recipe directory, e.g. egs/hsk/ASR:

    ../../../tools/check_audio_use.py --checkpoint zipformer_gmot/exp/epoch-3.pt \\
        --cuts data/manifests/hsk_cuts_train.jsonl.gz --num-cuts 40

Prints the per-frame loss of each head (transducer simple/pruned, CTC) for the first
``--num-cuts`` cuts with (a) their own audio, (b) the audio of another cut of similar length and
(c) content-free features, and the relative increase of (b) over (a). When (b) and (c) are only a
few percent above (a), the prediction network's memorised text does the work and the encoder
contributes little: the model needs more updates before any recognition or GM-OT comparison
means something. See gmot.training.diagnostics.audio_dependence.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

import torch


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--checkpoint", type=Path, required=True, help="epoch-N.pt or checkpoint-B.pt")
    p.add_argument("--cuts", type=Path, required=True, help="lhotse cuts with audio and text")
    p.add_argument("--num-cuts", type=int, default=40, help="first N cuts form one batch (>= 2)")
    p.add_argument("--lang-dir", type=Path, default=Path("data/lang_char"), help="has tokens.txt")
    p.add_argument("--no-average", action="store_true", help="use 'model', not 'model_avg'")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = get_parser().parse_args(argv)
    from lhotse import load_manifest_lazy

    from gmot.data.filters import cut_text
    from gmot.data.tokens import TokenTable
    from gmot.decoding.features import compute_fbank, model_num_features
    from gmot.decoding.model_loading import load_checkpoint_model
    from gmot.training.diagnostics import audio_dependence

    if args.num_cuts < 2:
        raise SystemExit(f"--num-cuts must be >= 2 (got {args.num_cuts})")
    model, _, key = load_checkpoint_model(args.checkpoint, use_average=not args.no_average)
    table = TokenTable.load(args.lang_dir / "tokens.txt")
    waves, ids = [], []
    for cut in load_manifest_lazy(args.cuts):
        text = cut_text(cut)
        if not text:
            continue
        waves.append(cut.load_audio()[0])
        ids.append(table.encode(text, oov="unk"))
        if len(waves) == args.num_cuts:
            break
    if len(waves) < 2:
        raise SystemExit(f"{args.cuts}: fewer than 2 cuts with text")
    feats, lens = compute_fbank(waves, num_features=model_num_features(model))
    torch.manual_seed(0)
    res = audio_dependence(model, feats, lens, ids)
    print(f"{args.checkpoint} ({key}), {len(waves)} cuts of {args.cuts}; loss per encoder frame:")
    for head in res["own"]:
        own = res["own"][head]
        line = "  ".join(f"{k} {res[k][head]:.4f}" for k in ("own", "other", "constant"))
        rel = (res["other"][head] / own - 1.0) * 100.0 if own > 0 else float("nan")
        print(f"  {head:7s} {line}   other/own {rel:+.1f} %")
    return res


if __name__ == "__main__":
    main()
