#!/usr/bin/env bash
# recipes/tts_en: English ASR on a corpus synthesised on this machine (espeak-ng, flite, festival,
# Piper voices + noise/reverb/speed augmentation), BiLSTM-CTC acoustic model.
#
# Usage: ./run.sh [--stage N] [--stop_stage M] [--nj N] [--hours H] [--seed S] ...
#   stage 0: generate the corpus -> db/tts_corpus/ (wavs), data/{train,dev,test}/, data/lm_text/,
#            data/corpus_stats.{json,md}
#   stage 1: asr make-tokens (characters data/lang_char; --token_type bpe --nbpe N: BPE data/lang_bpe_N),
#            asr prepare-data + asr validate-data on each split
#   stage 2: asr extract-features -> dump/{train,dev,test}/ + data/train/cmvn.npz
#   stage 3: asr train (BiLSTM-CTC) -> exp/bilstm_ctc/ (checkpoints, curves PNG, train.log)
#   stage 4: asr package -> exp/bilstm_ctc/package_greedy/
#   stage 5: greedy decoding of dev/test;  stage 6: scoring -> exp/bilstm_ctc/RESULTS.md
#   stage 7: asr train-lm (LSTM LM on text without dev/test sentences) -> exp/lstm_lm/
#   stage 8: exp/model = acoustic model + LM, alpha/beta tuned on dev (asr tune-lm-weight)
#   stage 9: beam + LM decoding of dev/test and scoring;  stage 10: ONNX export -> exp/model_onnx/
#   stage 11: word 4-gram LM from data/lm_text/train.txt (or --arpa FILE) -> exp/ngram/lm.arpa
#             (--ngram_binary probing|trie: packaged as the KenLM binary exp/ngram/lm.binary);
#             exp/model_ngram = stage 8's models + it, weights tuned on dev; decoding of dev/test with it
# --preset NAME reads conf/presets/NAME.sh first (its values are defaults the other options still
# override): --preset large_cpu is the few-CPU-hours recipe of the shipped model (asr/pretrained/).
# Each stage writes data/.stageN.done (its parameters) after it succeeded and is skipped on the next
# run when the parameters are the same; changed parameters redo the stage (and the ones after it,
# whose parameters include it). Run from anywhere; paths are relative to this folder.
# Stages 1-11 are shared by every recipe (recipes/_common/pipeline.sh, options in
# recipes/_common/pipeline_options.sh: --nj --token_type --nbpe --feat_conf --train_dither --model_conf --train_conf --train_args
# --nproc_per_node --nnodes --rdzv_endpoint --rdzv_id --max_restarts --am_exp --lm_conf --lm_train_conf --lm_args --lm_exp --beam --device
# --ngram_order --ngram_prune --arpa --ngram_binary --ngram_model_dir --tune_search).
set -euo pipefail

stage=0
stop_stage=100
nj=2                 # parallel processes for corpus generation and feature extraction
hours=9.0            # train hours of synthetic speech (distinct sentences are the lever: see README)
dev_hours=0.15
test_hours=0.15
seed=0
engines=espeak,flite,festival,piper   # TTS engines (a missing one is skipped with a note)
augment=true         # speed / band-limit / reverb / noise / gain augmentation
drop_train_augment=  # ablations: comma list of speed,bandlimit,reverb,noise,codec left out of train only
train_codec=0        # share of train utterances through a lossy codec (GSM, mu-law, MP3, Opus, Vorbis)
pad_noise_db=        # e.g. -55: white/pink noise at this RMS dBFS in the utterances' padding instead of zeros
sources=fortunes,lee # text sources for sentences and LM text (lee: gensim's Lee corpus, fetched once)
beam=100             # LM decoding beam: 10 / 50 / 100 cut test WER by 18.6 / 20.9 / 22.5 % (README);
                     # beam 100 + lm_small runs at RTF 0.02 on one thread
train_dither=1.0     # the training features are made from audio dithered by 1 int16 LSB (dev/test and
                     # recognition are not): with the model's per-utterance mean normalisation it cut
                     # test WER by 12 points at the default budget (README, issue 16 ablation)
tune_search=local    # stages 8 and 11 tune the LM weights by walking to better neighbours: the same
                     # weights as the whole grid on this recipe at 17 decodes of dev instead of 37 (README)

cd "$(dirname "$0")"
preset=              # a file conf/presets/NAME.sh of option values, read before the other options
_args=("$@")
for ((_i = 0; _i < ${#_args[@]}; _i++)); do
  case "${_args[$_i]}" in
    --preset) preset="${_args[$((_i + 1))]:-}" ;;
    --preset=*) preset="${_args[$_i]#--preset=}" ;;
  esac
done
if [ -n "$preset" ]; then
  [ -f "conf/presets/$preset.sh" ] || { echo "$0: no preset conf/presets/$preset.sh (have: $(ls conf/presets | sed 's/\.sh$//' | tr '\n' ' '))" >&2; exit 1; }
  . "conf/presets/$preset.sh"
fi
. ../_common/pipeline_options.sh
. ../_common/parse_options.sh
. ../_common/pipeline.sh

pipeline_setup
case "$augment" in true|false) ;; *) echo "$0: --augment must be true or false" >&2; exit 1 ;; esac

splits="train dev test"
train_set=train dev_set=dev test_sets=test
lm_train_text=data/lm_text/train.txt lm_dev_text=data/lm_text/dev.txt
log "stages $stage..$stop_stage, nj=$nj"

# ------------------------------------------------------------------------------------------------
# Stage 0: synthesise the corpus
if stage_wanted 0; then
  params="hours=$hours dev_hours=$dev_hours test_hours=$test_hours seed=$seed engines=$engines augment=$augment sources=$sources"
  [ -n "$drop_train_augment" ] && params+=" drop_train_augment=$drop_train_augment"
  [ "$train_codec" != 0 ] && params+=" train_codec=$train_codec"
  [ -n "$pad_noise_db" ] && params+=" pad_noise_db=$pad_noise_db"
  if ! stage_is_done data/.stage0.done "$params" "stage 0 (corpus)"; then
    extra=()
    [ "$augment" = false ] && extra+=(--no-augment)
    [ -n "$drop_train_augment" ] && extra+=(--drop-train-augment "$drop_train_augment")
    [ "$train_codec" != 0 ] && extra+=(--train-codec-prob "$train_codec")
    [ -n "$pad_noise_db" ] && extra+=(--pad-noise-db "$pad_noise_db")
    run_logged python -m asr.synthesis.generate --out-dir data --wav-dir db/tts_corpus --text-cache db/text \
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

# Stages 1-11 (data dirs, features, train, package, decode, score, LM, tune, beam+LM, ONNX, n-gram LM)
pipeline_run
