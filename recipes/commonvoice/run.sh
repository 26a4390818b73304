#!/usr/bin/env bash
# recipes/commonvoice: BiLSTM-CTC on a Mozilla Common Voice locale (English or another Latin-script
# language: transcripts are normalised to a-z and apostrophes).
#
# Usage: ./run.sh --corpus_dir /data/cv-corpus-17.0-2024-03-15/en [--train_tsv validated] ...
#   stage 0: check the layout ({train,dev,test}.tsv + clips/*.mp3) and write data/{train,dev,test}
#            + data/lm_text/{train,dev}.txt (the training sentences). --train_tsv validated: train on
#            validated.tsv minus every dev/test clip, speaker and sentence.
#   stages 1-11: as in every recipe (recipes/_common/pipeline.sh): data dirs, features, train,
#            package, greedy decode + score, LSTM LM, tune alpha/beta on dev, beam + LM decode, ONNX,
#            word n-gram LM (stage 11: built from the LM text, or --arpa FILE) + its decode.
# GPU-sized defaults (conf/model/large.yaml, conf/train/gpu.yaml); --nproc_per_node N for DDP.
set -euo pipefail

stage=0
stop_stage=100
corpus_dir=""        # the locale folder holding clips/ and the TSV files
train_tsv=train      # train | validated
nj=8
speed_perturb=true            # 3-way speed perturbation (0.9/1.0/1.1) of the training set (stage 1)

_caller_dir="$PWD"
cd "$(dirname "$0")"
. ../_common/pipeline_options.sh
. ../_common/parse_options.sh
. ../_common/pipeline.sh

pipeline_setup
corpus_dir=$(caller_abspath "$corpus_dir")
train_set=train dev_set=dev test_sets=test
log "stages $stage..$stop_stage, nj=$nj"

# ------------------------------------------------------------------------------------------------
# Stage 0: Common Voice layout check + data dirs + LM text
if stage_wanted 0; then
  [ -n "$corpus_dir" ] || { echo "$0: stage 0 needs --corpus_dir (the Common Voice locale folder)" >&2; exit 1; }
  params="corpus_dir=$corpus_dir train_tsv=$train_tsv"
  if ! stage_is_done data/.stage0.done "$params" "stage 0 (corpus)"; then
    run_logged asr import-commonvoice --corpus-dir "$corpus_dir" --data-dir data --train-tsv "$train_tsv"
    stage_mark_done data/.stage0.done "$params"
    log "stage 0 (corpus): done"
  fi
fi

pipeline_run
