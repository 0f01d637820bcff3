#!/usr/bin/env bash
# Data preparation for AISHELL-1 (https://www.openslr.org/33/, 178 h).
#   ./prepare.sh                                   # download with lhotse (needs a network)
#   ./prepare.sh --dl-dir /data/aishell            # use a local copy (dir containing data_aishell/)
# Stages: 0 download or check the local copy | 1 cut manifests | 2 char token table (+BPE) |
#         3 precomputed fbank (off unless --compute-fbank true) | 4 MUSAN cuts (if --musan-dir
#         exists) | 5 PLM targets (default --plm-model bert-base-chinese, needs the hub once).
# Each stage writes a .done marker and is skipped when present (--force true redoes it).
set -eou pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus=aishell
dl_dir=download
bpe_vocab_size=0
compute_fbank=false
musan_dir=download/musan
plm_model=bert-base-chinese
plm_layer=-1
force=false
_gmot_known="stage stop_stage dl_dir bpe_vocab_size compute_fbank musan_dir plm_model plm_layer force"
. local/parse_options.sh || exit 1

if [ -z "${PYTHON:-}" ] && [ -x ../../../.venv/bin/python ]; then PYTHON=../../../.venv/bin/python; fi
PY=${PYTHON:-python3}
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (prepare.sh:${BASH_LINENO[0]}) $*"; }
run_stage() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  if [ -f "$2" ] && [ "$force" != true ]; then log "Stage $1: $2 exists, skipping"; return 1; fi
  return 0
}
# AISHELL's own archive unpacks to <dl_dir>/aishell/data_aishell; a local copy may have
# data_aishell directly under --dl-dir.
if [ -d "$dl_dir/data_aishell" ]; then corpus_dir=$dl_dir; else corpus_dir=$dl_dir/aishell; fi
mkdir -p data/manifests data/lang_char

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  if [ -d "$corpus_dir/data_aishell" ]; then
    log "Stage 0: using local AISHELL copy $corpus_dir"
  else
    log "Stage 0: downloading AISHELL-1 with lhotse into $dl_dir (about 15 GB)"
    lhotse download aishell "$dl_dir"
    corpus_dir=$dl_dir/aishell
  fi
  $PY -c "import sys; from gmot.data.manifests import check_aishell_layout as c; c(sys.argv[1], 'aishell')" "$corpus_dir"
  log "Stage 0: layout OK"
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
  log "Stage 5: PLM targets with $plm_model (layer $plm_layer) -> data/plm"
  $PY ./local/compute_plm_targets.py --corpus $corpus --manifest-dir data/manifests \
    --output-dir data/plm --plm-model "$plm_model" --layer "$plm_layer"
  touch data/plm/.done
fi
log "Done (stages $stage..$stop_stage)."
