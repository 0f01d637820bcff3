"""Synthesise the embedded offline "hsk" corpus in AISHELL-1's directory layout.

Text (:mod:`gmot.corpora.hsk.text`): the characters of the HSK 3.0 sentences up to ``max_level``
(``hsk-sentences-audio``, CC-BY-SA-4.0; 301 characters at level 1). Training reads thousands of
distinct sentences: the natural HSK sentences written with those characters that are not held
out, plus sentences sampled from a word-bigram model of the HSK text. Dev and test read held-out
natural sentences that never occur in training.

Speech: espeak-ng 1.52 (``espeakng-loader``), voice ``cmn-latn-pinyin`` fed tone-numbered
pinyin (the HSK readings, or pypinyin's for a share ``pypinyin_prob`` of utterances, so the
model hears both conventions). A speaker is a voice variant with a base pitch and rate drawn
from continuous ranges; train, dev and test have disjoint speakers, and with ``held_variants``
> 0 dev and test also get voice variants that training never hears.

Layout written under ``<out_dir>``::

    data_aishell/wav/{train,dev,test}/S0xxx/BAC009S0xxxW0yyy.wav   16 kHz mono int16
    data_aishell/transcript/aishell_transcript_v0.8.txt
    data_aishell/LICENSE-and-ATTRIBUTION.txt
    data_aishell/speakers.tsv                                       speaker -> voice settings
    data_aishell/utterances.tsv                                     utterance -> pinyin, source

Each utterance gets random leading/trailing silence, random gain, optionally a small synthetic
reverb, and white or pink noise at a random SNR; everything derives from ``seed``. Audio is
written by worker processes over fixed chunks of utterances, each chunk in a fresh process, so
the output does not depend on the number of jobs.

Modules: :mod:`~gmot.corpora.hsk.text` (character set, natural and sampled sentences, text per
split), :mod:`~gmot.corpora.hsk.plan` (speakers and utterances), :mod:`~gmot.corpora.hsk.synth`
(audio, augmentation, the files above; :func:`speech_span` re-draws an utterance's padding),
:mod:`~gmot.corpora.hsk.trim` (training cuts without the padding, ``prepare.sh
--trim-silence``), :mod:`~gmot.corpora.hsk.cli` (the command lines of
``local/synth_hsk_corpus.py`` and ``local/synth_text_set.py``). Their public names are
importable from this package.
"""

from gmot.corpora.hsk.cli import get_parser, get_text_set_parser, main, main_text_set
from gmot.corpora.hsk.plan import (
    PITCH_RANGE,
    RATE_RANGE,
    Speaker,
    Utterance,
    make_speakers,
    plan_text_set,
    plan_utterances,
    split_variants,
    usable_variants,
)
from gmot.corpora.hsk.synth import (
    LICENSE_TEXT,
    TARGET_SR,
    augment,
    speech_span,
    synthesize_corpus,
    utterance_rng,
    write_corpus,
)
from gmot.corpora.hsk.text import (
    Sentence,
    TextBalance,
    WordBigram,
    balance_by_coverage,
    charset,
    cjk_only,
    hsk_word_runs,
    natural_sentences,
    pinyin_of,
    select_text,
)
from gmot.corpora.hsk.trim import trim_silence

__all__ = [
    "LICENSE_TEXT",
    "PITCH_RANGE",
    "RATE_RANGE",
    "TARGET_SR",
    "Sentence",
    "Speaker",
    "TextBalance",
    "Utterance",
    "WordBigram",
    "augment",
    "speech_span",
    "balance_by_coverage",
    "charset",
    "cjk_only",
    "hsk_word_runs",
    "main",
    "main_text_set",
    "get_parser",
    "get_text_set_parser",
    "make_speakers",
    "natural_sentences",
    "pinyin_of",
    "plan_text_set",
    "plan_utterances",
    "select_text",
    "split_variants",
    "synthesize_corpus",
    "trim_silence",
    "utterance_rng",
    "usable_variants",
    "write_corpus",
]
