#!/usr/bin/env bash
# recipes/tts_en: English ASR on a corpus synthesised on this machine (espeak-ng, flite, festival,
# Piper voices + noise/reverb/speed augmentation), BiLSTM-CTC acoustic model.
#
# Usage: ./run.sh [--stage N] [--stop_stage M] [--nj N] [--hours H] [--seed S] ...
#   stage 0: generate the corpus -> db/tts_corpus/ (wavs), data/{train,dev,test}/, data/lm_text/,
#            data/corpus_stats.{json,md}
#   stage 1: asr prepare-data + asr validate-data on each split (character tokens data/lang_char)
#   stage 2: asr extract-features -> dump/{train,dev,test}/ + data/train/cmvn.npz
# Each stage writes data/.stageN.done (its parameters) after it succeeded and is skipped on the next
# run when the parameters are the same; changed parameters redo the stage (and the ones after it,
# whose parameters include it). Run from anywhere; paths are relative to this folder.
set -euo pipefail

stage=0
stop_stage=100
nj=2                 # parallel processes for corpus generation and feature extraction
hours=3.0            # train hours of synthetic speech
dev_hours=0.15
test_hours=0.15
seed=0
engines=espeak,flite,festival,piper   # TTS engines (a missing one is skipped with a note)
augment=true         # speed / band-limit / reverb / noise / gain augmentation
sources=fortunes,lee # text sources for sentences and LM text (lee: gensim's Lee corpus, fetched once)
feat_conf=conf/fbank.yaml

cd "$(dirname "$0")"
. ../_common/parse_options.sh
. ../_common/stages.sh

if ! command -v asr >/dev/null 2>&1; then
  if [ -x ../../.venv/bin/asr ]; then
    export PATH="$(cd ../.. && pwd)/.venv/bin:$PATH"
  else
    echo "$0: 'asr' is not on PATH: run 'make recipe' from the repository root (it installs .venv)" >&2
    exit 1
  fi
fi
case "$augment" in true|false) ;; *) echo "$0: --augment must be true or false" >&2; exit 1 ;; esac

splits="train dev test"
log "stages $stage..$stop_stage, nj=$nj"

# ------------------------------------------------------------------------------------------------
# Stage 0: synthesise the corpus
if stage_wanted 0; then
  params="hours=$hours dev_hours=$dev_hours test_hours=$test_hours seed=$seed engines=$engines augment=$augment sources=$sources"
  if ! stage_is_done data/.stage0.done "$params" "stage 0 (corpus)"; then
    extra=()
    [ "$augment" = false ] && extra+=(--no-augment)
    run_logged python -m asr.corpus.generate --out-dir data --wav-dir db/tts_corpus --text-cache db/text \
      --hours "$hours" --dev-hours "$dev_hours" --test-hours "$test_hours" --seed "$seed" \
      --engines "$engines" --sources "$sources" --nj "$nj" "${extra[@]}"
    stage_mark_done data/.stage0.done "$params"
    log "stage 0 (corpus): done; summary in data/corpus_stats.md"
  fi
fi

# Later stages depend on what stage 0 actually generated (its marker), not on today's options.
corpus_params() {
  if [ ! -f data/.stage0.done ]; then
    echo "$0: stage $1 needs the corpus: run stage 0 first (./run.sh --stage 0)" >&2
    exit 1
  fi
  cat data/.stage0.done
}

# ------------------------------------------------------------------------------------------------
# Stage 1: finish and validate the data dirs (utt2dur, spk2utt, character tokens)
if stage_wanted 1; then
  params="corpus=[$(corpus_params 1)] tokens=char"
  if ! stage_is_done data/.stage1.done "$params" "stage 1 (data dirs)"; then
    run_logged python -c "from asr.text import CharTokenizer; CharTokenizer().save('data/lang_char/tokens.txt')"
    for s in $splits; do
      run_logged asr prepare-data "data/$s" --tokens data/lang_char/tokens.txt
      run_logged asr validate-data "data/$s" --tokens data/lang_char/tokens.txt
    done
    stage_mark_done data/.stage1.done "$params"
    log "stage 1 (data dirs): done"
  fi
fi

# ------------------------------------------------------------------------------------------------
# Stage 2: features (+ global CMVN stats from train)
if stage_wanted 2; then
  [ -f "$feat_conf" ] || { echo "$0: feature config $feat_conf not found" >&2; exit 1; }
  [ -f data/.stage1.done ] || { echo "$0: stage 2 needs stage 1 (./run.sh --stage 1)" >&2; exit 1; }
  params="corpus=[$(corpus_params 2)] feat_conf=$feat_conf@$(file_digest "$feat_conf")"
  if ! stage_is_done data/.stage2.done "$params" "stage 2 (features)"; then
    for s in $splits; do
      cmvn=()
      [ "$s" = train ] && cmvn=(--cmvn-out data/train/cmvn.npz)
      run_logged asr extract-features --data "data/$s" --dump "dump/$s" --conf "$feat_conf" \
        --nj "$nj" "${cmvn[@]}"
    done
    stage_mark_done data/.stage2.done "$params"
    log "stage 2 (features): done"
  fi
fi

# ------------------------------------------------------------------------------------------------
# Stages 3+ (training, decoding, scoring, packaging): added by the lead.

log "finished (stages $stage..$stop_stage)"
