#!/usr/bin/env bash
# Data preparation for the embedded offline "hsk" corpus (synthetic Mandarin, no download).
#   ./prepare.sh                      # everything: HSK level-1 characters (the CPU demo's corpus)
#   ./prepare.sh --num-train 12000 --force true   # twice the training audio, all redone
#   ./prepare.sh --stage 1 --stop-stage 2
# Stages: 0 synthesise corpus | 1 cut manifests | 2 char token table (+BPE) |
#         3 precomputed fbank (off unless --compute-fbank true) | 4 MUSAN cuts (if --musan-dir
#         exists) | 5 PLM targets | 6 char n-gram LM (--lm-order N, 0: none). Each stage writes
# a .done marker and is skipped when present (delete the marker or pass --force true to redo it).
set -eou pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus=hsk
dl_dir=download
num_train=6000
num_dev=300
num_test=300
utts_per_speaker=20
max_level=1
held_sentences=60
held_variants=0
# the next three are gmot.corpora.hsk.TextBalance's defaults (a test keeps them equal)
text_flatten=0.5
text_backoff=0.3
coverage_target=100
seed=42
num_jobs=$(local/idle_cores.sh --cores)  # all usable cores (nproc would obey OMP_NUM_THREADS)
bpe_vocab_size=0
compute_fbank=false
pitch=false  # true: fbank + 3 pitch features (stage 3; train with --pitch 1)
musan_dir=download/musan
plm_model=""
plm_layer=-1
lm_order=2
# Seconds of the synthesiser's leading/trailing silence kept on the training cuts (stage 1
# trims the rest, local/trim_silence.py; the padding is known exactly from the seed); "none"
# keeps it all. Dev and test are never trimmed.
trim_silence=none
force=false
_gmot_known="stage stop_stage dl_dir num_train num_dev num_test utts_per_speaker max_level held_sentences held_variants text_flatten text_backoff coverage_target seed num_jobs bpe_vocab_size compute_fbank pitch musan_dir plm_model plm_layer lm_order trim_silence force"
. local/parse_options.sh || exit 1

. local/prepare_common.sh
corpus_dir=$dl_dir/hsk
mkdir -p data/manifests data/lang_char "$dl_dir"

# The stage-0 marker records the options the corpus was synthesised with (see run_stage).
corpus_opts="num_train=$num_train num_dev=$num_dev num_test=$num_test max_level=$max_level"
corpus_opts+=" utts_per_speaker=$utts_per_speaker"
corpus_opts+=" held_sentences=$held_sentences held_variants=$held_variants seed=$seed"
corpus_opts+=" text_flatten=$text_flatten text_backoff=$text_backoff coverage_target=$coverage_target"
if run_stage 0 "$corpus_dir/.done" "$corpus_opts"; then
  log "Stage 0: synthesise the hsk corpus into $corpus_dir ($corpus_opts)"
  $PY ./local/synth_hsk_corpus.py --output-dir "$corpus_dir" --num-train "$num_train" \
    --num-dev "$num_dev" --num-test "$num_test" --max-level "$max_level" \
    --utts-per-speaker "$utts_per_speaker" \
    --held-sentences "$held_sentences" --held-variants "$held_variants" --seed "$seed" \
    --text-flatten "$text_flatten" --text-backoff "$text_backoff" --coverage-target "$coverage_target" \
    --num-jobs "$num_jobs"
  echo "$corpus_opts" > "$corpus_dir/.done"
fi

if [ "$trim_silence" != none ]; then
  stage1_post_opts="trim_silence=$trim_silence"
  recipe_stage1_post() {
    log "Stage 1: trim the training cuts' silence to $trim_silence s per side"
    $PY ./local/trim_silence.py --cuts data/manifests/${corpus}_cuts_train.jsonl.gz --seed "$seed" \
      --margin "$trim_silence"
  }
fi
prepare_common_stages
log "Done (stages $stage..$stop_stage)."
