#!/usr/bin/env python3
"""Character n-gram LM (ARPA) from the training transcripts, for n-best rescoring.

Reads <lang-dir>/text (one training transcript per line, written by prepare_lang_char.py) and
<lang-dir>/tokens.txt, trains an interpolated absolute-discounting n-gram model over the
characters with sentence boundaries (gmot.decoding.ngram_lm.train_ngram) and writes it as
ARPA to --output. Only training text is used: dev and test transcripts never reach the LM.
Decode with it: decode.py --decoding-method modified_beam_search_ctc_rescoring
--lm-path data/lm/char_3gram.arpa --lm-scale 1.0.

Example: ./local/train_char_lm.py --lang-dir data/lang_char --order 3 \
    --output data/lm/char_3gram.arpa
"""

import argparse
import logging
import sys
from pathlib import Path

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.data.tokens import SPECIALS, OOVError, TokenTable
from gmot.decoding.ngram_lm import train_ngram


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--lang-dir",
        default="data/lang_char",
        help="holds text (training transcripts, one per line) and tokens.txt",
    )
    p.add_argument("--order", type=int, default=3, help="longest n-gram (characters)")
    p.add_argument("--discount", type=float, default=0.75, help="absolute discount D in (0, 1)")
    p.add_argument("--output", default="data/lm/char_3gram.arpa", help="ARPA file to write")
    return p


def main() -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    a = get_parser().parse_args()
    lang = Path(a.lang_dir)
    text, tokens_path = lang / "text", lang / "tokens.txt"
    for f in (text, tokens_path):
        if not f.is_file():
            raise SystemExit(f"{f} not found; run ./prepare.sh --stage 2 --stop-stage 2")
    tokens = TokenTable.load(tokens_path)
    sentences = []
    for lineno, line in enumerate(text.read_text(encoding="utf-8").splitlines(), 1):
        try:
            ids = tokens.encode(line, oov="error")
        except OOVError as e:
            raise SystemExit(f"{text}:{lineno}: {e.args[0]} ({tokens_path})") from None
        if ids:
            sentences.append([tokens.symbols[i] for i in ids])
    if not sentences:
        raise SystemExit(f"{text} holds no transcripts")
    vocab = [s for s in tokens.symbols if s not in SPECIALS]
    lm = train_ngram(sentences, order=a.order, discount=a.discount, vocab=vocab)
    out = lm.write_arpa(a.output)
    n = {k: sum(1 for g in lm.probs if len(g) == k) for k in range(1, lm.order + 1)}
    logging.info("%d sentences -> %s (%s)", len(sentences), out, n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
