#!/usr/bin/env bash
# recipes/librispeech: BiLSTM-CTC on LibriSpeech (or mini-LibriSpeech with --mini true), brought by you.
#
# Usage: ./run.sh --corpus_dir /data/LibriSpeech [--mini true] [--train_parts train-clean-100,...]
#                 [--lm_text /data/librispeech-lm-norm.txt.gz] [--stage N] [--stop_stage M] ...
#   stage 0: check the layout (LibriSpeech/<subset>/<SPK>/<CHAP>/*.flac + *.trans.txt) and write
#            data/train (train_parts combined), data/dev (dev_parts combined), data/test_clean,
#            data/test_other, data/lm_text/{train,dev}.txt (train transcripts + optional --lm_text).
#            --mini true: train-clean-5 -> data/train; dev-clean-2 split by speaker -> data/dev, data/test
#   stages 1-11: as in every recipe (recipes/_common/pipeline.sh): data dirs, features, train,
#            package, greedy decode + score, LSTM LM, tune alpha/beta on dev, beam + LM decode, ONNX,
#            word n-gram LM (stage 11: built from the LM text, or --arpa FILE) + its decode.
# GPU-sized defaults (conf/model.yaml -> conf/model/large.yaml, conf/train.yaml -> conf/train/gpu.yaml);
# several GPUs: --nproc_per_node N (torchrun DDP). See README.md for expected WERs and Slurm use.
set -euo pipefail

stage=0
stop_stage=100
corpus_dir=""                 # the LibriSpeech folder (or the folder holding it)
mini=false                    # true: mini-LibriSpeech (train-clean-5, dev-clean-2)
train_parts=train-clean-100,train-clean-360,train-other-500   # comma-separated (default: all 960 h)
dev_parts=dev-clean           # comma-separated dev subsets (combined into data/dev)
test_parts=test-clean,test-other
lm_text=""                    # optional extra LM text, e.g. librispeech-lm-norm.txt.gz (openslr 11)
nj=8
speed_perturb=true            # 3-way speed perturbation (0.9/1.0/1.1) of the training set (stage 1)

_caller_dir="$PWD"
cd "$(dirname "$0")"
. ../_common/pipeline_options.sh
. ../_common/parse_options.sh
. ../_common/pipeline.sh

pipeline_setup
case "$mini" in true|false) ;; *) echo "$0: --mini must be true or false" >&2; exit 1 ;; esac
corpus_dir=$(caller_abspath "$corpus_dir"); lm_text=$(caller_abspath "$lm_text")

train_set=train dev_set=dev
if [ "$mini" = true ]; then test_sets=test; else test_sets=$(echo "$test_parts" | tr ',-' ' _'); fi
log "stages $stage..$stop_stage, nj=$nj"

# ------------------------------------------------------------------------------------------------
# Stage 0: LibriSpeech layout check + data dirs + LM text
if stage_wanted 0; then
  [ -n "$corpus_dir" ] || { echo "$0: stage 0 needs --corpus_dir (the LibriSpeech folder)" >&2; exit 1; }
  params="corpus_dir=$corpus_dir mini=$mini train=$train_parts dev=$dev_parts test=$test_parts lm_text=$lm_text"
  if ! stage_is_done data/.stage0.done "$params" "stage 0 (corpus)"; then
    extra=()
    [ "$mini" = true ] && extra+=(--mini)
    [ -n "$lm_text" ] && extra+=(--lm-text "$lm_text")
    run_logged asr import-librispeech --corpus-dir "$corpus_dir" --data-dir data \
      --train-sets "$train_parts" --dev-sets "$dev_parts" --test-sets "$test_parts" "${extra[@]}"
    stage_mark_done data/.stage0.done "$params"
    log "stage 0 (corpus): done"
  fi
fi

pipeline_run
