#!/usr/bin/env python3
"""Character token table (and optional sentencepiece BPE model) from training transcripts.

Writes <lang-dir>/tokens.txt (<blk> 0, <sos/eos> 1, <unk> 2, then characters by frequency),
<lang-dir>/text (one normalised train transcript per line) and <lang-dir>/words.txt
(<eps> 0, then the distinct characters, as icefall's char recipes do).
With --bpe-vocab-size N > 0 also trains <lang-dir>_bpe_N/bpe.model on the same text.

Example: ./local/prepare_lang_char.py --cuts data/manifests/hsk_cuts_train.jsonl.gz
"""

import argparse
import logging
import sys
from pathlib import Path

from lhotse import load_manifest_lazy

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.data.tokens import TokenTable


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cuts", required=True, help="training cut manifest")
    p.add_argument("--lang-dir", default="data/lang_char")
    p.add_argument("--order", default="frequency", choices=["frequency", "codepoint"])
    p.add_argument("--bpe-vocab-size", type=int, default=0, help="0 disables BPE")
    a = p.parse_args()
    cuts_path = Path(a.cuts)
    if not cuts_path.is_file():
        raise SystemExit(f"{cuts_path} not found; run ./prepare.sh --stage 1 --stop-stage 1")
    texts = ["".join(s.text.split()) for c in load_manifest_lazy(cuts_path) for s in c.supervisions]
    texts = [t for t in texts if t]
    lang = Path(a.lang_dir)
    lang.mkdir(parents=True, exist_ok=True)
    table = TokenTable.build(texts, order=a.order)
    table.save(lang / "tokens.txt")
    (lang / "text").write_text("\n".join(texts) + "\n", encoding="utf-8")
    words = ["<eps>"] + sorted({ch for t in texts for ch in t})
    (lang / "words.txt").write_text(
        "".join(f"{w} {i}\n" for i, w in enumerate(words)), encoding="utf-8"
    )
    logging.info("%s: %d tokens from %d transcripts", lang / "tokens.txt", len(table), len(texts))
    if a.bpe_vocab_size > 0:
        import sentencepiece as spm

        bpe_dir = Path(f"{a.lang_dir.rstrip('/')}_bpe_{a.bpe_vocab_size}")
        bpe_dir.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(
            input=str(lang / "text"),
            model_prefix=str(bpe_dir / "bpe"),
            vocab_size=a.bpe_vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            user_defined_symbols=["<blk>", "<sos/eos>"],
            unk_id=2,
            bos_id=-1,
            eos_id=-1,
            unk_piece="<unk>",
            input_sentence_size=10_000_000,
            num_threads=1,
        )
        sp = spm.SentencePieceProcessor(model_file=str(bpe_dir / "bpe.model"))
        with open(bpe_dir / "tokens.txt", "w", encoding="utf-8") as f:
            for i in range(sp.vocab_size()):
                f.write(f"{sp.id_to_piece(i)} {i}\n")
        logging.info("%s: BPE vocab %d", bpe_dir / "bpe.model", sp.vocab_size())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
