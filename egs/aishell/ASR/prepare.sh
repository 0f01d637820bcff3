#!/usr/bin/env bash
# Data preparation for AISHELL-1 (https://www.openslr.org/33/, 178 h).
#   ./prepare.sh                                   # download with lhotse (needs a network)
#   ./prepare.sh --dl-dir /data/aishell            # use a local copy (dir containing data_aishell/)
# Stages: 0 download or check the local copy | 1 cut manifests | 2 char token table (+BPE) |
#         3 precomputed fbank (off unless --compute-fbank true) | 4 MUSAN cuts (if --musan-dir
#         exists) | 5 PLM targets (default --plm-model bert-base-chinese, needs the hub once) |
#         6 character n-gram LM of the training text (--lm-order N, 0: none).
# Each stage writes a .done marker recording its options and input fingerprints; a rerun
# skips a stage whose marker matches and stops on a mismatch (--force true redoes it).
set -eou pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=100
corpus=aishell
corpus_layout=aishell  # how stage 1 reads the corpus: gmot/data/layouts/aishell.py
dl_dir=download
bpe_vocab_size=0
compute_fbank=false
pitch=false  # true: fbank + 3 pitch features (stage 3; train with --pitch 1)
musan_dir=download/musan
plm_model=bert-base-chinese
plm_layer=-1
lm_order=3
force=false
_gmot_known="stage stop_stage dl_dir bpe_vocab_size compute_fbank pitch musan_dir plm_model plm_layer lm_order force"
. local/parse_options.sh || exit 1

. local/prepare_common.sh
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
  # argv[2], this clone's root (local -> ../../../local): its own gmot, not one the venv has
  $PY -c "import sys; sys.path.insert(0, sys.argv[2]); from gmot.data.layouts.aishell import check_aishell_layout as c; c(sys.argv[1], 'aishell')" \
    "$corpus_dir" "$(cd -P local/.. && pwd)"
  log "Stage 0: layout OK"
fi

prepare_common_stages
log "Done (stages $stage..$stop_stage)."
