#!/usr/bin/env bash
# recipes/kaldi_datadir: BiLSTM-CTC on any Kaldi-style data dirs you already have.
#
# Usage: ./run.sh --train_dir /k/data/train --dev_dir /k/data/dev --test_dirs "/k/data/eval1 /k/data/eval2"
#                 [--lm_text extra_text.txt] [--normalize false] [--base_dir /k] [--stage N] ...
#   stage 0: copy each dir (wav.scp, text, utt2spk, segments) to data/train, data/dev, data/test
#            (or data/test_<name> for several test dirs), audio paths made absolute (relative ones are
#            looked up under --base_dir, default: the directory you ran this from, then the data dir),
#            transcripts normalised; data/lm_text/{train,dev}.txt from the train transcripts
#            (+ --lm_text minus dev/test sentences). Kaldi pipe commands in wav.scp are refused:
#            convert the audio to files first.
#   stages 1-11: as in every recipe (recipes/_common/pipeline.sh): data dirs, features, train,
#            package, greedy decode + score, LSTM LM, tune alpha/beta on dev, beam + LM decode, ONNX,
#            word n-gram LM (stage 11: built from the LM text, or --arpa FILE) + its decode.
# GPU-sized defaults (conf/model/large.yaml, conf/train/gpu.yaml); --nproc_per_node N for DDP.
set -euo pipefail

stage=0
stop_stage=100
train_dir=""         # training data dir
dev_dir=""           # dev data dir (early stopping, LM weight tuning)
test_dirs=""         # one or more test data dirs (space or comma separated)
lm_text=""           # optional extra LM text (one sentence per line; .gz ok)
normalize=true       # normalise transcripts with asr.text.normalize_text
base_dir=""          # where relative wav.scp paths are relative to (default: where you run from)
nj=4
speed_perturb=true            # 3-way speed perturbation (0.9/1.0/1.1) of the training set (stage 1)

_caller_dir="$PWD"
cd "$(dirname "$0")"
. ../_common/pipeline_options.sh
. ../_common/parse_options.sh
. ../_common/pipeline.sh

pipeline_setup
case "$normalize" in true|false) ;; *) echo "$0: --normalize must be true or false" >&2; exit 1 ;; esac
train_dir=$(caller_abspath "$train_dir"); dev_dir=$(caller_abspath "$dev_dir"); lm_text=$(caller_abspath "$lm_text")
base_dir=$(caller_abspath "${base_dir:-$_caller_dir}")
tests=(); for d in ${test_dirs//,/ }; do tests+=("$(caller_abspath "$d")"); done
log "stages $stage..$stop_stage, nj=$nj"

# ------------------------------------------------------------------------------------------------
# Stage 0: copy the data dirs + LM text
if stage_wanted 0; then
  if [ -z "$train_dir" ] || [ -z "$dev_dir" ] || [ ${#tests[@]} -eq 0 ]; then
    echo "$0: stage 0 needs --train_dir, --dev_dir and --test_dirs (Kaldi data dirs)" >&2; exit 1
  fi
  digest=$(for d in "$train_dir" "$dev_dir" "${tests[@]}"; do cat "$d"/wav.scp "$d"/text 2>/dev/null; done | sha1sum | cut -c1-12)
  params="train=$train_dir dev=$dev_dir test=${tests[*]} lm_text=$lm_text normalize=$normalize base_dir=$base_dir content=$digest"
  if ! stage_is_done data/.stage0.done "$params" "stage 0 (corpus)"; then
    extra=()
    [ -n "$lm_text" ] && extra+=(--lm-text "$lm_text")
    [ "$normalize" = false ] && extra+=(--no-normalize)
    run_logged asr import-kaldi-datadir --train "$train_dir" --dev "$dev_dir" --test "${tests[@]}" \
      --data-dir data --base-dir "$base_dir" "${extra[@]}"
    stage_mark_done data/.stage0.done "$params"
    # an utterance id may now name other audio, and extract-features keeps existing feature files:
    # drop the old dumps (stages 1-2 are redone since their parameters include stage 0's)
    for s in train dev $(cat data/test_sets); do rm -rf "dump/$s"; done
    log "stage 0 (corpus): done"
  fi
fi

train_set=train dev_set=dev
if [ -f data/test_sets ]; then test_sets=$(cat data/test_sets); else test_sets=test; fi
pipeline_run
