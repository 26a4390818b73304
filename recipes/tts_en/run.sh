#!/usr/bin/env bash
# recipes/tts_en: English ASR on a corpus synthesised on this machine (espeak-ng, flite, festival,
# Piper voices + noise/reverb/speed augmentation), BiLSTM-CTC acoustic model.
#
# Usage: ./run.sh [--stage N] [--stop_stage M] [--nj N] [--hours H] [--seed S] ...
#   stage 0: generate the corpus -> db/tts_corpus/ (wavs), data/{train,dev,test}/, data/lm_text/,
#            data/corpus_stats.{json,md}
#   stage 1: asr prepare-data + asr validate-data on each split (character tokens data/lang_char)
#   stage 2: asr extract-features -> dump/{train,dev,test}/ + data/train/cmvn.npz
#   stage 3: asr train (BiLSTM-CTC) -> exp/bilstm_ctc/ (checkpoints, curves PNG, train.log)
#   stage 4: asr package -> exp/bilstm_ctc/package_greedy/
#   stage 5: greedy decoding of dev/test;  stage 6: scoring -> exp/bilstm_ctc/RESULTS.md
#   stage 7: asr train-lm (LSTM LM on text without dev/test sentences) -> exp/lstm_lm/
#   stage 8: exp/model = acoustic model + LM, alpha/beta tuned on dev (asr tune-lm-weight)
#   stage 9: beam + LM decoding of dev/test and scoring;  stage 10: ONNX export -> exp/model_onnx/
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
model_conf=conf/model.yaml     # acoustic model (conf/model/*.yaml)
train_conf=conf/train.yaml     # training loop (conf/train/*.yaml)
train_args=""                  # extra overrides, e.g. "--train.epochs 20 --model.hidden 320"
am_exp=exp/bilstm_ctc          # acoustic model experiment dir
lm_conf=conf/lm.yaml           # LSTM LM (conf/model/lm_*.yaml)
lm_train_conf=conf/lm_train.yaml  # LM training loop (conf/train/lm.yaml)
lm_args=""                     # extra LM overrides, e.g. "--train.epochs 5"
lm_exp=exp/lstm_lm             # LM experiment dir
beam=10                        # beam width for LM decoding
device=auto                    # auto (CUDA when present) | cpu | cuda

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
    # stages 1-2 describe the data dirs stage 0 just rewrote: redo them. An utterance id may now
    # have other audio, and extract-features keeps existing feature files, so drop the old dumps.
    rm -f data/.stage1.done data/.stage2.done
    rm -rf dump/train dump/dev dump/test
    for s in $splits; do rm -f "data/$s/feats.scp" "data/$s/utt2num_frames"; done
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
# Stage 3: train the BiLSTM-CTC acoustic model (resumes from checkpoints/last.pt after a kill)
if stage_wanted 3; then
  [ -f data/.stage2.done ] || { echo "$0: stage 3 needs features (./run.sh --stage 2)" >&2; exit 1; }
  params="features=[$(cat data/.stage2.done)] model=$model_conf@$(file_digest "$model_conf") train=$train_conf@$(file_digest "$train_conf") args=[$train_args]"
  if ! stage_is_done "$am_exp/.done" "$params" "stage 3 (acoustic model)"; then
    if [ -f "$am_exp/.params" ] && [ "$(cat "$am_exp/.params")" != "$params" ]; then
      old="$am_exp.old.$(date +%Y%m%d%H%M%S)"
      log "stage 3: $am_exp was trained with other parameters: moving it to $old"
      mv "$am_exp" "$old"
    fi
    mkdir -p "$am_exp"
    printf '%s\n' "$params" > "$am_exp/.params"
    # shellcheck disable=SC2086
    run_logged asr train --train-data data/train --dev-data data/dev --tokens data/lang_char/tokens.txt \
      --cmvn data/train/cmvn.npz --exp "$am_exp" --model-conf "$model_conf" --train-conf "$train_conf" \
      --device "$device" -- $train_args
    stage_mark_done "$am_exp/.done" "$params"
  fi
fi

# ------------------------------------------------------------------------------------------------
# Stage 4: package the averaged model as a self-contained folder (weights, tokens, features, CMVN)
if stage_wanted 4; then
  [ -f "$am_exp/.done" ] || { echo "$0: stage 4 needs a trained model (./run.sh --stage 3)" >&2; exit 1; }
  params="am=[$(file_digest "$am_exp/.done" "$am_exp"/checkpoints/avg_best*.pt)]"
  if ! stage_is_done "$am_exp/.package.done" "$params" "stage 4 (package)"; then
    run_logged asr package --exp "$am_exp" --out "$am_exp/package_greedy"
    stage_mark_done "$am_exp/.package.done" "$params"
  fi
fi

# ------------------------------------------------------------------------------------------------
# Stage 5: greedy decoding of dev and test, Stage 6: scoring (RESULTS.md)
for s in dev test; do
  if stage_wanted 5; then
    params="pkg=[$(file_digest "$am_exp/package_greedy/package.json")] data=[$(file_digest data/.stage2.done)]"
    if ! stage_is_done "$am_exp/decode_greedy_$s/.done" "$params" "stage 5 (greedy decode $s)"; then
      run_logged asr decode --model "$am_exp/package_greedy" --data "data/$s" --out "$am_exp/decode_greedy_$s" \
        --method greedy --nj "$nj"
      stage_mark_done "$am_exp/decode_greedy_$s/.done" "$params"
    fi
  fi
  if stage_wanted 6; then
    run_logged asr score --data "data/$s" --decode "$am_exp/decode_greedy_$s" --exp "$am_exp" \
      --name "${s}_greedy" --description "greedy, no LM"
  fi
done

# ------------------------------------------------------------------------------------------------
# Stage 7: train the LSTM language model on text that excludes every dev and test sentence
if stage_wanted 7; then
  params="text=[$(file_digest data/lm_text/train.txt data/lm_text/dev.txt)] conf=$lm_conf@$(file_digest "$lm_conf") train=$lm_train_conf@$(file_digest "$lm_train_conf") args=[$lm_args]"
  if ! stage_is_done "$lm_exp/.done" "$params" "stage 7 (LSTM LM)"; then
    if [ -f "$lm_exp/.params" ] && [ "$(cat "$lm_exp/.params")" != "$params" ]; then
      mv "$lm_exp" "$lm_exp.old.$(date +%Y%m%d%H%M%S)"
    fi
    mkdir -p "$lm_exp"
    printf '%s\n' "$params" > "$lm_exp/.params"
    # shellcheck disable=SC2086
    run_logged asr train-lm --text data/lm_text/train.txt --dev-text data/lm_text/dev.txt \
      --tokens data/lang_char/tokens.txt --exp "$lm_exp" --conf "$lm_conf" --train-conf "$lm_train_conf" \
      --device "$device" -- $lm_args
    stage_mark_done "$lm_exp/.done" "$params"
  fi
fi

# ------------------------------------------------------------------------------------------------
# Stage 8: final model package exp/model = acoustic model + LM, alpha/beta tuned on dev only
if stage_wanted 8; then
  [ -f "$lm_exp/.done" ] || { echo "$0: stage 8 needs the LM (./run.sh --stage 7)" >&2; exit 1; }
  params="am=[$(file_digest "$am_exp/.package.done")] lm=[$(file_digest "$lm_exp/.done")] beam=$beam"
  if ! stage_is_done exp/.model.done "$params" "stage 8 (package + tune alpha/beta on dev)"; then
    run_logged asr package --exp "$am_exp" --lm-exp "$lm_exp" --out exp/model
    run_logged asr tune-lm-weight --model exp/model --data data/dev --beam "$beam"
    stage_mark_done exp/.model.done "$params"
  fi
fi

# ------------------------------------------------------------------------------------------------
# Stage 9: beam search + LM decoding of dev and test with the tuned package, and scoring
if stage_wanted 9; then
  for s in dev test; do
    params="pkg=[$(file_digest exp/model/package.json)] data=[$(file_digest data/.stage2.done)]"
    if ! stage_is_done "$am_exp/decode_beam_lm_$s/.done" "$params" "stage 9 (beam+LM decode $s)"; then
      run_logged asr decode --model exp/model --data "data/$s" --out "$am_exp/decode_beam_lm_$s" --nj "$nj"
      stage_mark_done "$am_exp/decode_beam_lm_$s/.done" "$params"
    fi
    a=$(grep '^alpha' exp/model/decode.yaml | awk '{print $2}'); b=$(grep '^beta' exp/model/decode.yaml | awk '{print $2}')
    run_logged asr score --data "data/$s" --decode "$am_exp/decode_beam_lm_$s" --exp "$am_exp" \
      --name "${s}_beam_lm" --description "beam $beam + LSTM LM, alpha=$a beta=$b (tuned on dev)"
  done
fi

# ------------------------------------------------------------------------------------------------
# Stage 10: ONNX export (+ int8) with a PyTorch parity check -> exp/model_onnx (torch-free runtime)
if stage_wanted 10; then
  params="pkg=[$(file_digest exp/model/package.json)]"
  if ! stage_is_done exp/.onnx.done "$params" "stage 10 (ONNX export)"; then
    run_logged asr export --model exp/model --out exp/model_onnx --int8
    stage_mark_done exp/.onnx.done "$params"
  fi
fi

if [ -f "$am_exp/RESULTS.md" ]; then
  echo
  cat "$am_exp/RESULTS.md"
  wer=$(grep '^| test_beam_lm ' "$am_exp/RESULTS.md" | awk -F'|' '{print $3}' || true)
  gwer=$(grep '^| test_greedy ' "$am_exp/RESULTS.md" | awk -F'|' '{print $3}' || true)
  [ -n "$gwer" ] && log "test WER (greedy): ${gwer// /}%"
  [ -n "$wer" ] && log "test WER (beam + LM): ${wer// /}%"
fi

log "finished (stages $stage..$stop_stage)"
