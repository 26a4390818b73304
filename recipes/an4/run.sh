#!/usr/bin/env bash
# recipes/an4: BiLSTM-CTC on CMU AN4 (alphanumeric census database, ~50 min of training speech).
#
# Usage: ./run.sh --corpus_dir /data/an4 [--stage N] [--stop_stage M] [--dev_utts 100] ...
#   stage 0: check the layout (an4/etc/an4_{train,test}.transcription, an4/wav/an4_clstk/<spk>/*.sph,
#            an4/wav/an4test_clstk/<spk>/*.sph; .wav/.flac, or headerless .raw converted to db/an4_wav/)
#            and write data/{train,dev,test} (dev: whole speakers held out of the AN4 training list)
#            + data/lm_text/{train,dev}.txt (the training transcripts)
#   stages 1-11: as in every recipe (recipes/_common/pipeline.sh): data dirs, features, train,
#            package, greedy decode + score, LSTM LM, tune alpha/beta on dev, beam + LM decode, ONNX,
#            word n-gram LM (stage 11: built from the LM text, or --arpa FILE) + its decode.
# GPU-sized defaults (conf/model.yaml -> conf/model/large.yaml); AN4 is small: conf/model/small.yaml +
# conf/train/cpu.yaml (--model_conf ../../conf/model/small.yaml --train_conf ../../conf/train/cpu.yaml)
# trains on a CPU too. See README.md.
set -euo pipefail

stage=0
stop_stage=100
corpus_dir=""        # the an4 folder (or the folder holding it)
dev_utts=100         # hold out whole training speakers until dev has this many utterances
raw_byteorder=big    # byte order of headerless .raw audio (an4_raw.bigendian: big)
seed=0               # which speakers are held out for dev
nj=4
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
# Stage 0: AN4 layout check + data dirs + LM text
if stage_wanted 0; then
  [ -n "$corpus_dir" ] || { echo "$0: stage 0 needs --corpus_dir (the an4 folder)" >&2; exit 1; }
  params="corpus_dir=$corpus_dir dev_utts=$dev_utts raw_byteorder=$raw_byteorder seed=$seed"
  if ! stage_is_done data/.stage0.done "$params" "stage 0 (corpus)"; then
    run_logged asr import-an4 --corpus-dir "$corpus_dir" --data-dir data --wav-dir db/an4_wav \
      --dev-utts "$dev_utts" --seed "$seed" --raw-byteorder "$raw_byteorder"
    stage_mark_done data/.stage0.done "$params"
    log "stage 0 (corpus): done"
  fi
fi

pipeline_run
