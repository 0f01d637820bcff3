#!/usr/bin/env bash
# The embedded-corpus demo, end to end on CPU and offline:
#   prepare (synthesise the hsk corpus, manifests, tokens, PLM targets) -> train a tiny Zipformer
#   transducer with GM-OT -> decode dev and test -> print the CER.
#
#   ./run.sh                                   # GM-OT on (the default demo)
#   ./run.sh --stage 1 --gmot-loss-scale 0 --exp-dir zipformer_gmot/exp_nogmot   # the baseline
#   ./run.sh --stage 1 --train-args "--gmot-alpha 0"                   # re-train only, WD-only OT
#   ./run.sh --preset long                     # 12 epochs, exp dir exp_long (test CER 14.9, RESULTS.md)
#   ./run.sh --pitch true --exp-dir zipformer_gmot/exp_pitch   # fbank + 3 pitch features (no gain
#        measured, RESULTS.md); over an existing data/fbank: ./prepare.sh --compute-fbank true
#        --pitch true --force true first
#
# The defaults are chosen for a 2-core CPU and about 13 minutes of training (4 epochs, about
# 1380 updates; the whole demo takes about 15 minutes; --num-epochs 5 lowers the test CER by about
# 5 points but takes the demo to 20-21 minutes, RESULTS.md): the HSK level-1
# characters (301) in 6000 distinct training sentences, fbank precomputed by prepare.sh and
# normalised per utterance in the model (--input-norm utterance), small
# batches (--max-duration 50), CTC beside the transducer (scale 1.0), base lr 0.07 and the
# Zipformer's schedules on a 1-second clock (--ref-duration 1) so that its warm-up regularisers
# are done within the first few hundred updates (RESULTS.md has the measurements). Decoding uses
# the running average over the last epoch (--avg 1 --use-averaged-model 1) and decodes the
# transducer searches twice: alone and jointly with the CTC head (--ctc-weight 1.5, CTC prefix
# scores: --ctc-joint prefix); the CTC-rescored n-best is decoded once more with a character
# bigram LM of the training text (--lm-scale 1.5, beam 8; --lm-scale 0 skips it).
# Stages: 0 prepare.sh | 1 train | 2 decode ($methods, below) | 3 summary.
# Every option: ./run.sh --help. See RESULTS.md for measured CERs and times.
set -eou pipefail
cd "$(dirname "$0")"

stage=0
stop_stage=3
exp_dir=zipformer_gmot/exp
encoder_config=tiny
input_norm=utterance
freq_pool=1
pitch=false
decoder_dim=256
joiner_dim=256
num_epochs=4
avg=1
max_duration=50
num_buckets=10
spec_aug=0
max_level=1
ref_duration=1
base_lr=0.07
lr_batches=500
lr_epochs=2
seed=42
num_workers=0
ctc_loss_scale=1.0
gmot_loss_scale=0.3
gmot_alpha=0.5
gmot_epsilon=0.1
gmot_layer=-1
gmot_center_plm=1
methods="greedy_search modified_beam_search ctc_greedy_search modified_beam_search_ctc_rescoring"
# Joint CTC / transducer scoring (decode.py --ctc-weight): greedy_search and modified_beam_search
# are decoded a second time with this weight times the CTC head's log-probabilities added on
# every frame (0: not at all). 1.5 was chosen on dev (RESULTS.md, "Joint CTC / transducer").
ctc_weight=1.5
# How the CTC head's scores join the transducer's (decode.py --ctc-joint): prefix = the change
# of the CTC probability of the hypothesis so far on each frame, which keeps a character that
# the two heads place on different frames from coming out twice; frame = the CTC head's
# log-probability of the same symbol on the same frame (the demo's scoring before 2026-12-08).
# prefix was chosen on dev over three seeds (RESULTS.md, "CTC prefix scores").
ctc_joint=prefix
# Character n-gram LM (prepare.sh stage 6, data/lm/char_<lm_order>gram.arpa, training text only):
# modified_beam_search_ctc_rescoring is decoded a second time, with beam lm_beam_size and
# lm_scale times the LM's log-probability added in the rescoring (0: not at all). Bigram, 1.5
# and beam 8 were chosen on dev over three seeds (RESULTS.md, "A character n-gram LM").
lm_order=2
lm_scale=1.5
lm_beam_size=8
train_args=""
# --preset long: three times the updates (12 epochs, about an hour on 2 cores) with a slower
# learning-rate decay over epochs and more checkpoints averaged. A preset only changes defaults:
# options given on the command line win whatever their position.
preset=default
for ((_i = 1; _i <= $#; _i++)); do
  case "${!_i}" in
    --preset=*) _a=${!_i}; preset=${_a#--preset=} ;;
    --preset) _j=$((_i + 1)); preset=${!_j:-} ;;
  esac
done
case "$preset" in
  default) ;;
  long) num_epochs=12; avg=4; lr_epochs=3; exp_dir=zipformer_gmot/exp_long ;;
  *) echo "$0: unknown --preset '$preset' (known: default, long)" >&2; exit 1 ;;
esac
_gmot_known="preset stage stop_stage exp_dir encoder_config input_norm freq_pool pitch decoder_dim joiner_dim num_epochs avg max_duration num_buckets spec_aug max_level ref_duration base_lr lr_batches lr_epochs seed num_workers ctc_loss_scale gmot_loss_scale gmot_alpha gmot_epsilon gmot_layer gmot_center_plm methods ctc_weight ctc_joint lm_order lm_scale lm_beam_size train_args"
. local/parse_options.sh || exit 1

if [ -z "${PYTHON:-}" ] && [ -x ../../../.venv/bin/python ]; then PYTHON=../../../.venv/bin/python; fi
PY=${PYTHON:-python3}
# Threads: the cores idle when the run starts (local/idle_cores.sh: the idle share of the CPUs
# over one second, at least 1). OpenMP threads spin while they wait for each other, so on a core
# that another process keeps busy one training step costs several times more than with one
# thread fewer (RESULTS.md, "Threads").
cores=$(local/idle_cores.sh --cores)
if [ -z "${OMP_NUM_THREADS:-}" ]; then
  OMP_NUM_THREADS=$(local/idle_cores.sh)
fi
export OMP_NUM_THREADS
log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (run.sh) $*"; }
log "OMP_NUM_THREADS=$OMP_NUM_THREADS ($cores cores, load average $(cut -d' ' -f1 /proc/loadavg))"
want() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
t0=$(date +%s)

if want 0; then
  log "Stage 0: ./prepare.sh"
  ./prepare.sh --max-level "$max_level" --compute-fbank true --pitch "$pitch" --lm-order "$lm_order"
fi

# The encoder: a named Zipformer config with --input-norm and --freq-pool applied (a JSON
# --encoder-config is passed as it is; give input_norm and freq_pool inside it).
case "$encoder_config" in
  "{"*) encoder_spec=$encoder_config ;;
  *) encoder_spec="{\"base\": \"$encoder_config\", \"input_norm\": \"$input_norm\", \"freq_pool\": $freq_pool}" ;;
esac

if want 1; then
  log "Stage 1: train ($encoder_config Zipformer transducer, GM-OT scale $gmot_loss_scale," \
      "alpha $gmot_alpha, $num_epochs epochs) -> $exp_dir"
  plm_dim=$($PY -c 'import json; print(json.load(open("data/plm/hsk_plm_info.json"))["dim"])')
  # shellcheck disable=SC2086
  $PY ./zipformer_gmot/train.py --world-size 1 --num-epochs "$num_epochs" --exp-dir "$exp_dir" \
    --encoder-config "$encoder_spec" --decoder-dim "$decoder_dim" --joiner-dim "$joiner_dim" \
    --max-duration "$max_duration" --num-buckets "$num_buckets" --drop-last 0 \
    --enable-spec-aug "$spec_aug" --ref-duration "$ref_duration" --base-lr "$base_lr" \
    --lr-batches "$lr_batches" --lr-epochs "$lr_epochs" --seed "$seed" --num-workers "$num_workers" \
    --on-the-fly-feats 0 --manifest-dir data/fbank --pitch "$pitch" --use-ctc 1 --ctc-loss-scale "$ctc_loss_scale" \
    --gmot-loss-scale "$gmot_loss_scale" --gmot-alpha "$gmot_alpha" --gmot-center-plm "$gmot_center_plm" \
    --gmot-epsilon "$gmot_epsilon" --gmot-layer "$gmot_layer" --gmot-plm-dim "$plm_dim" \
    --warm-step 200 --average-period 10 --valid-interval 0 --log-interval 20 \
    --plot-plan-interval 100 $train_args
fi

if want 2; then
  for m in $methods; do
    weights=0
    case "$m" in
      greedy_search | modified_beam_search) [ "$ctc_weight" = 0 ] || weights="0 $ctc_weight" ;;
      # its first pass is joint too (n-best of modified beam search with --ctc-weight), then
      # rescored with the CTC head's whole-sequence log-likelihood (RESULTS.md, "CTC rescoring")
      modified_beam_search_ctc_rescoring) weights=$ctc_weight ;;
    esac
    lm_scales=0
    if [ "$m" = modified_beam_search_ctc_rescoring ] && [ "$lm_scale" != 0 ]; then
      lm_scales="0 $lm_scale"
    fi
    for w in $weights; do
      for s in $lm_scales; do
        lm_args=()
        [ "$s" = 0 ] || lm_args=(--lm-path "data/lm/char_${lm_order}gram.arpa" --lm-scale "$s"
                                 --beam-size "$lm_beam_size")
        joint=""
        [ "$w" = 0 ] || joint=" ($ctc_joint)"
        log "Stage 2: decode dev and test with $m, CTC weight $w$joint, LM scale $s" \
            "(epoch $num_epochs, avg $avg, averaged model)"
        $PY ./zipformer_gmot/decode.py --exp-dir "$exp_dir" --epoch "$num_epochs" --avg "$avg" \
          --use-averaged-model 1 --decoding-method "$m" --ctc-weight "$w" --ctc-joint "$ctc_joint" \
          --max-duration 300 \
          --on-the-fly-feats 0 "${lm_args[@]}" \
          --test-cuts data/fbank/hsk_cuts_dev.jsonl.gz data/fbank/hsk_cuts_test.jsonl.gz
      done
    done
  done
fi

if want 3; then
  log "Stage 3: CER summary ($exp_dir)"
  for m in $methods; do
    for f in "$exp_dir/$m"/wer-summary-*; do
      [ -f "$f" ] || continue
      # every setting decoded into this summary (e.g. with and without --ctc-weight)
      tail -n +2 "$f" | while IFS= read -r row; do
        printf '%-22s %-60s %s\n' "$m" "$(basename "$f")" "$row"
      done
    done
  done
  log "done in $(( $(date +%s) - t0 )) s"
fi
