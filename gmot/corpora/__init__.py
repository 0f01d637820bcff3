"""Corpora that gmot builds itself, for recipes that have no corpus to download.

- :mod:`gmot.corpora.espeak`: in-process espeak-ng synthesis (ctypes, ``espeakng-loader``);
- :mod:`gmot.corpora.hsk`: the synthetic Mandarin "hsk" corpus (HSK sentences read by
  espeak-ng) in AISHELL-1's layout, written by ``egs/hsk/ASR/local/synth_hsk_corpus.py``.

Only recipes (``local/``) and tests import this package. It may use ``gmot.data``'s public
names; ``gmot.data`` and the other library packages never import it: they take a corpus's
name and paths from the recipe.
"""
