#!/usr/bin/env bash
# recipes/adapt: adapt a trained model (the shipped one by default) to your voice and words, from a
# folder of your recordings; prints the WER before and after on recordings held out from training.
#
# Usage: ./run.sh --audio_dir DIR [--text FILE] [--init_from PKG] [--mix_data DIR --mix_hours H] ...
#   stage 0: asr import-audio-folder: DIR's audio files (subfolders = speakers) with their transcripts
#            (--text: Kaldi "<name> <transcript>" lines or a path<TAB>text .tsv; else one .txt/.lab beside
#            each file) -> data/{train,dev,test}/ (deterministic split: --dev_share, --test_share or
#            --dev_list/--test_list; --split_by file|speaker), + about --mix_hours of --mix_data in train,
#            data/lm_text/, data/init/ (the starting model's feature, model and LM configs).
#            Audio only: the starting model transcribes every file into data/transcripts.tsv and the
#            recipe STOPS (exit status 2): correct that file, then run again with --transcripts_checked true.
#   stages 1-10: the shared stages (recipes/_common/pipeline.sh) with stage 3 fine-tuning the starting
#            model (asr train --init-from, conf/train.yaml -> conf/train/finetune.yaml) and stage 7 the
#            starting package's LM on your transcripts (asr train-lm --init-from; from scratch when the
#            package has none), alpha/beta re-tuned on dev (8), beam + LM decoding (9), ONNX export (10):
#            exp/model (PyTorch package) and exp/model_onnx (ONNX) are the adapted model.
#   stage 11: the starting model on the same held-out recordings (greedy and beam + LM) and the table of
#            WER before/after (exp/finetune/RESULTS.md has every row).
# Each stage skips work it has done with the same parameters (recipes/_common/stages.sh).
set -euo pipefail

stage=0
stop_stage=100
audio_dir=""          # folder of your recordings (required)
text=""               # transcripts: Kaldi text file or path<TAB>text .tsv (default: .txt/.lab beside the audio)
speaker=user          # speaker id of the files at the top of audio_dir (subfolders name their own)
init_from=""          # starting model: a PyTorch model package (default: the shipped asr/pretrained/<NAME>/torch)
transcripts_checked=false  # audio only: true once you have corrected data/transcripts.tsv
dev_share=0.1         # share of your recordings held out as dev (early stopping, alpha/beta)
test_share=0.15       # share held out as test: the WER before/after is measured on these only
split_by=file         # file | speaker: hold out single recordings, or whole speakers (speaker-independent)
dev_list=""           # file of names to hold out as dev instead of --dev_share (one per line)
test_list=""          # file of names to hold out as test instead of --test_share
mix_data=""           # a data dir of machine-made speech to mix into train (e.g. ../tts_en/data/train)
mix_hours=0.1         # hours of mix_data mixed in (with mix_data only)
nj=2
beam=50               # beam of the LM decoding and the alpha/beta search, before and after (the shipped model's
                      # 100 costs twice the time for ~2 % relative WER: recipes/tts_en/README.md)
am_exp=exp/finetune
lm_exp=exp/lm_finetune

_caller_dir="$PWD"
cd "$(dirname "$0")"
. ../_common/pipeline_options.sh
. ../_common/parse_options.sh
. ../_common/pipeline.sh

pipeline_setup
case "$transcripts_checked" in true|false) ;; *) echo "$0: --transcripts_checked must be true or false" >&2; exit 1 ;; esac
audio_dir=$(caller_abspath "$audio_dir"); text=$(caller_abspath "$text"); init_from=$(caller_abspath "$init_from")
dev_list=$(caller_abspath "$dev_list"); test_list=$(caller_abspath "$test_list"); mix_data=$(caller_abspath "$mix_data")
if [ -z "$init_from" ]; then
  init_from=$(python -c "from asr.pretrained import pretrained_dir; print(pretrained_dir('torch') or '')")
  if [ -z "$init_from" ]; then
    echo "$0: this install has no shipped model (asr/pretrained is empty): give --init_from PKG, a PyTorch model package" >&2
    exit 1
  fi
fi
[ -f "$init_from/model.pt" ] || { echo "$0: --init_from $init_from is not a PyTorch model package (no model.pt)" >&2; exit 1; }
log "stages $stage..$stop_stage, starting model $init_from"

# ------------------------------------------------------------------------------------------------
# Stage 0: your recordings -> data dirs (+ machine-made speech mixed in), the starting model's configs
if stage_wanted 0; then
  [ -n "$audio_dir" ] || { echo "$0: stage 0 needs --audio_dir DIR (a folder of your recordings)" >&2; exit 1; }
  [ -d "$audio_dir" ] || { echo "$0: --audio_dir $audio_dir is not a folder" >&2; exit 1; }
  content=$( { (cd "$audio_dir" && find . -type f -printf '%P %s %T@\n' | sort); [ -z "$text" ] || cat "$text"
              [ "$transcripts_checked" = false ] || cat data/transcripts.tsv 2>/dev/null || true; } | sha1sum | cut -c1-12)
  params="audio=$audio_dir text=$text speaker=$speaker content=$content checked=$transcripts_checked dev=$dev_share test=$test_share by=$split_by dev_list=$dev_list test_list=$test_list mix=$mix_data hours=$mix_hours init=$(init_digest "$init_from")"
  if ! stage_is_done data/.stage0.done "$params" "stage 0 (your recordings)"; then
    args=(--audio-dir "$audio_dir" --data-dir data --speaker "$speaker" --dev-share "$dev_share"
          --test-share "$test_share" --split-by "$split_by" --guess-with "$init_from")
    [ -n "$text" ] && args+=(--text "$text")
    [ -n "$dev_list" ] && args+=(--dev-list "$dev_list")
    [ -n "$test_list" ] && args+=(--test-list "$test_list")
    [ -n "$mix_data" ] && args+=(--mix-data "$mix_data" --mix-hours "$mix_hours")
    [ "$transcripts_checked" = true ] && args+=(--transcripts-checked)
    rc=0
    run_logged asr import-audio-folder "${args[@]}" || rc=$?
    if [ "$rc" = 2 ]; then
      log "stopped: correct $(pwd)/data/transcripts.tsv, then run again with --transcripts_checked true"
      exit 2
    fi
    [ "$rc" = 0 ] || exit "$rc"
    mkdir -p data/init
    cp "$init_from/features.yaml" data/init/features.yaml
    run_logged python - "$init_from" <<'EOF'
import sys
from pathlib import Path

from asr import config
from asr.finetune import load_source
from asr.models.acoustic import AcousticModelConfig
from asr.models.lm import LMConfig

pkg = Path(sys.argv[1])
am = load_source(pkg, "acoustic")
config.save(config.from_dict(AcousticModelConfig, am.model_config), "data/init/model.yaml")
lm = Path("data/init/lm.yaml")
if (pkg / "lm.pt").is_file():
    config.save(config.from_dict(LMConfig, load_source(pkg, "lm").model_config), lm)
elif lm.exists():
    lm.unlink()
EOF
    # stages 1-2 describe the data dirs stage 0 just rewrote: redo them, without the old features
    rm -f data/.stage1.done data/.stage2.done
    rm -rf dump/train dump/dev dump/test
    for s in train dev test; do rm -f "data/$s/feats.scp" "data/$s/utt2num_frames"; done
    stage_mark_done data/.stage0.done "$params"
    log "stage 0 (your recordings): done (data/split.json says what went where)"
  fi
fi

# Stages 1-10, fine-tuning the starting model with its own feature settings and architecture
train_set=train dev_set=dev test_sets=test
feat_conf=data/init/features.yaml
model_conf=data/init/model.yaml
# the LM: the starting package's, fine-tuned on your transcripts; a new one when it has none
if [ -f data/init/lm.yaml ]; then
  lm_conf=data/init/lm.yaml lm_init_from=$init_from
else
  lm_conf=conf/lm.yaml lm_train_conf=conf/lm_train_scratch.yaml lm_init_from=
fi
pipeline_run

# ------------------------------------------------------------------------------------------------
# Stage 11: the starting model on the held-out recordings, and the WER before/after
if stage_wanted 11; then
  for method in greedy beam_lm; do
    out="$am_exp/decode_before_${method}_test"
    flags=(--method greedy); desc="starting model, greedy"
    if [ "$method" = beam_lm ]; then
      if [ ! -f "$init_from/lm.pt" ]; then log "stage 11: the starting model has no LM: no beam + LM figure before"; continue; fi
      flags=(--method beam --beam "$beam"); desc="starting model, beam $beam + its LM (its alpha/beta)"
    fi
    params="pkg=[$(init_digest "$init_from")] data=[$(file_digest data/.stage2.done)] ${flags[*]}"
    if ! stage_is_done "$out/.done" "$params" "stage 11 (starting model, $method, test)"; then
      run_logged asr decode --model "$init_from" --data data/test --out "$out" --nj "$nj" "${flags[@]}"
      stage_mark_done "$out/.done" "$params"
    fi
    run_logged asr score --data data/test --decode "$out" --exp "$am_exp" --name "test_before_$method" --description "$desc"
  done
  row() { grep "^| $1 " "$am_exp/RESULTS.md" | awk -F'|' '{gsub(/ /, "", $3); print $3}' || true; }
  n=$(wc -l < data/test/text)
  echo
  echo "WER % on your $n held-out recordings (data/test; never trained or tuned on):"
  printf '  %-12s %8s %8s\n' "" before after
  printf '  %-12s %8s %8s\n' greedy "$(row test_before_greedy)" "$(row test_greedy)"
  printf '  %-12s %8s %8s\n' "beam + LM" "$(row test_before_beam_lm)" "$(row test_beam_lm)"
  echo "adapted model: $(pwd)/$model_dir (PyTorch), $(pwd)/$onnx_dir (ONNX):  asr transcribe --model $(pwd)/$onnx_dir FILE"
fi
