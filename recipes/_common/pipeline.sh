#!/usr/bin/env bash
# The corpus-independent stages 1-11 that every recipe shares. A recipe's run.sh sets its options
# (its own + recipes/_common/pipeline_options.sh), parses them, sources this file, runs its own
# stage 0 (corpus -> Kaldi data dirs under data/ + LM text, marker data/.stage0.done), then calls
# pipeline_run. Stages (numbers, markers and messages are the same in every recipe):
#
#   stage 1: asr make-tokens (characters -> data/lang_char, or with --token_type bpe a sentencepiece
#            model trained on the training transcripts only -> data/lang_bpe_$nbpe), then
#            asr prepare-data + asr validate-data on each data dir; every later stage reads that
#            lang dir's tokens.txt (+ bpe.model), and the LM is trained on the same units;
#            with --speed_perturb true also asr speed-perturb: data/<train_set>_sp (3-way 0.9/1.0/1.1,
#            Kaldi-style sp0.9-/sp1.1- utterance and speaker ids), which stages 2-3 then train on
#   stage 2: asr extract-features -> dump/<set>/ + data/<train_set>/cmvn.npz; when stage 3 trains
#            on the fly (on_the_fly: true in $train_conf or --train.on_the_fly in $train_args) the
#            training set is not dumped (--stats-only: its CMVN stats, utt2num_frames, feats.yaml)
#   stage 3: asr train (BiLSTM-CTC; torchrun DDP when nproc_per_node > 1, multi-node with --nnodes and
#            --rdzv_endpoint; --init-from $init_from if set) -> $am_exp
#   stage 4: asr package -> $am_exp/package_greedy/
#   stage 5: greedy decoding of dev and test sets;  stage 6: scoring -> $am_exp/RESULTS.md
#   stage 7: asr train-lm on $lm_train_text (dev perplexity on $lm_dev_text; --init-from $lm_init_from) -> $lm_exp
#   stage 8: $model_dir (exp/model) = acoustic model + LM, alpha/beta tuned on the dev set (asr tune-lm-weight)
#   stage 9: beam + LM decoding of dev and test sets and scoring;  stage 10: ONNX export -> $onnx_dir (exp/model_onnx)
#   stage 11: word n-gram LM (asr build-ngram on $lm_train_text -> exp/ngram/lm.arpa, or --arpa FILE[.gz];
#             --ngram_binary probing|trie: converted to the KenLM binary exp/ngram/lm.binary);
#             $ngram_model_dir (exp/model_ngram) = stage 8's models + it, weights tuned on dev; beam decoding
#             of dev and test sets with it and scoring
#
# Variables the recipe sets before pipeline_run (defaults in brackets):
#   train_set [train], dev_set [dev], test_sets [test]   data dir names under data/
#   lm_train_text [data/lm_text/train.txt], lm_dev_text [data/lm_text/dev.txt]
#   corpus_marker [data/.stage0.done]   written by the recipe's stage 0; later stages depend on it
# plus the shared options of pipeline_options.sh and stage/stop_stage.

. "$(dirname "${BASH_SOURCE[0]}")/stages.sh"

# Content digest of an --init-from source: a package's package.json (it hashes every file), else the file.
init_digest() { if [ -d "$1" ]; then file_digest "$1"/package.json 2>/dev/null || file_digest "$1"/checkpoints/*.pt; else file_digest "$1"; fi; }

# Puts the repository's .venv on PATH when 'asr' is not found (run from anywhere).
pipeline_setup() {
  if ! command -v asr >/dev/null 2>&1; then
    if [ -x ../../.venv/bin/asr ]; then
      export PATH="$(cd ../.. && pwd)/.venv/bin:$PATH"
    else
      echo "$0: 'asr' is not on PATH: run 'make recipe' from the repository root (it installs .venv)" >&2
      exit 1
    fi
  fi
}

# Later stages depend on what stage 0 actually produced (its marker), not on today's options.
corpus_params() {
  if [ ! -f "${corpus_marker:-data/.stage0.done}" ]; then
    echo "$0: stage $1 needs the corpus: run stage 0 first (./run.sh --stage 0)" >&2
    exit 1
  fi
  cat "${corpus_marker:-data/.stage0.done}"
}

# Whether stage 3 computes features on the fly: the last --train.on_the_fly of $train_args, else
# the on_the_fly line of $train_conf (true or false).
train_on_the_fly() {
  local v
  v=$(printf '%s\n' "$train_args" | grep -oE -- '--train\.on_the_fly[ =]+[A-Za-z0-9]+' | tail -1 | sed -E 's/.*[ =]//' || true)
  if [ -z "$v" ] && [ -f "$train_conf" ]; then
    v=$(grep -E '^on_the_fly:' "$train_conf" | head -1 | sed -E 's/^on_the_fly:[[:space:]]*//; s/[[:space:]]*(#.*)?$//' || true)
  fi
  case "$v" in true|True|yes|1) echo true ;; *) echo false ;; esac
}

pipeline_run() {
  : "${train_set:=train}" "${dev_set:=dev}" "${test_sets:=test}"
  : "${lm_train_text:=data/lm_text/train.txt}" "${lm_dev_text:=data/lm_text/dev.txt}"
  : "${corpus_marker:=data/.stage0.done}"
  # stage 8/10 markers beside their folders: exp/.model.done and exp/.model_onnx.done by default
  local model_marker onnx_marker
  model_marker="$(dirname "$model_dir")/.$(basename "$model_dir").done"
  onnx_marker="$(dirname "$onnx_dir")/.$(basename "$onnx_dir").done"
  [ "$onnx_dir" = exp/model_onnx ] && onnx_marker=exp/.onnx.done  # the name it always had
  # --speed_perturb true: stages 2-3 use the perturbed copy of the training set (made in stage 1)
  local src_train="$train_set" sp_param=""
  case "$speed_perturb" in
    true) train_set="${train_set}_sp"; sp_param=" speed_perturb=0.9,1.0,1.1" ;;
    false) ;;
    *) echo "$0: --speed_perturb must be true or false, got '$speed_perturb'" >&2; exit 1 ;;
  esac
  local splits="$train_set $dev_set $test_sets" eval_sets="$dev_set $test_sets" s params
  local lang tokens_param=""
  case "$token_type" in
    char) lang=data/lang_char ;;
    bpe) lang="data/lang_bpe_$nbpe" ;;
    *) echo "$0: --token_type must be char or bpe, got '$token_type'" >&2; exit 1 ;;
  esac
  # BPE runs name their units in the parameters of the stages that use them (a char run's markers
  # keep the parameters they always had, so an existing char experiment is not redone)
  if [ "$token_type" = bpe ] && [ -f "$lang/tokens.txt" ]; then
    tokens_param=" tokens=$lang@$(file_digest "$lang/tokens.txt" "$lang/bpe.model")"
  fi
  # the tuning search joins the parameters of stages 8 and 11 only when it is not the grid (markers
  # written before the option existed stay valid)
  local tune_param=""
  case "$tune_search" in
    grid) ;;
    local) tune_param=" search=local" ;;
    *) echo "$0: --tune_search must be grid or local, got '$tune_search'" >&2; exit 1 ;;
  esac

  # ----------------------------------------------------------------------------------------------
  # Stage 1: the token set, then finish and validate the data dirs (utt2dur, spk2utt)
  if stage_wanted 1; then
    params="corpus=[$(corpus_params 1)] tokens=char$sp_param"
    if [ "$token_type" = bpe ]; then params="corpus=[$(corpus_params 1)] tokens=bpe nbpe=$nbpe$sp_param"; fi
    if ! stage_is_done data/.stage1.done "$params" "stage 1 (data dirs)"; then
      # (BPE learns from the training transcripts only: dev and test text never shapes the units)
      run_logged asr make-tokens --train-data "data/$src_train" --out "$lang" --token-type "$token_type" --nbpe "$nbpe"
      for s in $src_train $dev_set $test_sets; do
        run_logged asr prepare-data "data/$s" --tokens "$lang/tokens.txt"
        run_logged asr validate-data "data/$s" --tokens "$lang/tokens.txt"
      done
      if [ "$speed_perturb" = true ]; then
        rm -rf "data/$train_set"  # a copy from other parameters (its wavs are remade)
        run_logged asr speed-perturb --data "data/$src_train" --out "data/$train_set" --factors 0.9,1.0,1.1
        run_logged asr prepare-data "data/$train_set" --tokens "$lang/tokens.txt"
        run_logged asr validate-data "data/$train_set" --tokens "$lang/tokens.txt"
      fi
      stage_mark_done data/.stage1.done "$params"
      log "stage 1 (data dirs): done"
    fi
    if [ "$token_type" = bpe ]; then
      tokens_param=" tokens=$lang@$(file_digest "$lang/tokens.txt" "$lang/bpe.model")"
    fi
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 2: features (+ global CMVN stats from the training set)
  if stage_wanted 2; then
    [ -f "$feat_conf" ] || { echo "$0: feature config $feat_conf not found" >&2; exit 1; }
    [ -f data/.stage1.done ] || { echo "$0: stage 2 needs stage 1 (./run.sh --stage 1)" >&2; exit 1; }
    local otf otf_param=""
    otf=$(train_on_the_fly)
    [ "$otf" = true ] && otf_param=" train_on_the_fly=true"
    # --train_dither D: the training set's features are made from dithered audio (D int16 units,
    # see the options); it joins the parameters only when set (earlier markers stay valid)
    local dither_param=""
    case "$train_dither" in
      ""|0|0.0) ;;
      *) [[ "$train_dither" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "$0: --train_dither must be a number >= 0, got '$train_dither'" >&2; exit 1; }
         dither_param=" train_dither=$train_dither" ;;
    esac
    params="corpus=[$(corpus_params 2)] feat_conf=$feat_conf@$(file_digest "$feat_conf")$sp_param$otf_param$dither_param"
    if ! stage_is_done data/.stage2.done "$params" "stage 2 (features)"; then
      for s in $splits; do
        local out=(--dump "dump/$s")
        if [ "$s" = "$train_set" ]; then
          out+=(--cmvn-out "data/$train_set/cmvn.npz")
          [ -n "$dither_param" ] && out+=(--feat.dither "$train_dither")
          # on the fly: the training set is read as audio by stage 3; only its CMVN stats are needed
          [ "$otf" = true ] && out=(--stats-only --cmvn-out "data/$train_set/cmvn.npz")
          [ "$otf" = true ] && [ -n "$dither_param" ] && out+=(--feat.dither "$train_dither")
        fi
        run_logged asr extract-features --data "data/$s" --conf "$feat_conf" --nj "$nj" "${out[@]}"
      done
      stage_mark_done data/.stage2.done "$params"
      log "stage 2 (features): done"
    fi
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 3: train the BiLSTM-CTC acoustic model (resumes from checkpoints/last.pt after a kill)
  if stage_wanted 3; then
    [ -f data/.stage2.done ] || { echo "$0: stage 3 needs features (./run.sh --stage 2)" >&2; exit 1; }
    [ -f "$lang/tokens.txt" ] || { echo "$0: stage 3 needs $lang/tokens.txt: run stage 1 with --token_type $token_type" >&2; exit 1; }
    params="features=[$(cat data/.stage2.done)] model=$model_conf@$(file_digest "$model_conf") train=$train_conf@$(file_digest "$train_conf") args=[$train_args]$tokens_param"
    local init=()
    if [ -n "$init_from" ]; then
      init=(--init-from "$init_from")
      params+=" init_from=$init_from@$(init_digest "$init_from")"
    fi
    if ! stage_is_done "$am_exp/.done" "$params" "stage 3 (acoustic model)"; then
      local multinode=false
      if [ "$nnodes" != 1 ] || [ -n "$rdzv_endpoint" ]; then multinode=true; fi
      if [ "$multinode" = true ] && [ -z "$rdzv_endpoint" ]; then
        echo "$0: --nnodes $nnodes needs --rdzv_endpoint HOST:PORT (the same on every node)" >&2; exit 1
      fi
      if [ -f "$am_exp/.params" ] && [ "$(cat "$am_exp/.params")" != "$params" ]; then
        if [ "$multinode" = true ]; then  # every node runs this: one of them would move the others' run away
          echo "$0: $am_exp was trained with other parameters: move it away before a multi-node stage 3" >&2; exit 1
        fi
        local old="$am_exp.old.$(date +%Y%m%d%H%M%S)"
        log "stage 3: $am_exp was trained with other parameters: moving it to $old"
        mv "$am_exp" "$old"
      fi
      mkdir -p "$am_exp"
      printf '%s\n' "$params" > "$am_exp/.params"
      local train_cmd=(asr)
      # PyTorch's launcher, never one of our own. TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: with the store
      # shared between agent and workers, workers restarted after a failure can read the previous
      # round's addresses and fail to connect (pytorch/pytorch#135712); a user's own value wins.
      local elastic=(env "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=${TORCH_DISABLE_SHARE_RDZV_TCP_STORE:-1}"
                     python -m torch.distributed.run --nproc_per_node "$nproc_per_node" --max_restarts "$max_restarts")
      if [ "$multinode" = true ]; then
        # the same command on every node; the c10d rendezvous assigns the ranks
        train_cmd=("${elastic[@]}" --nnodes "$nnodes" --rdzv_backend c10d --rdzv_endpoint "$rdzv_endpoint"
                   --rdzv_id "$rdzv_id" -m asr.cli)
      elif [ "${nproc_per_node:-1}" -gt 1 ]; then
        train_cmd=("${elastic[@]}" --standalone -m asr.cli)  # one process per GPU on this node
      fi
      # shellcheck disable=SC2086
      run_logged "${train_cmd[@]}" train --train-data "data/$train_set" --dev-data "data/$dev_set" \
        --tokens "$lang/tokens.txt" --cmvn "data/$train_set/cmvn.npz" --exp "$am_exp" \
        --model-conf "$model_conf" --train-conf "$train_conf" --device "$device" "${init[@]}" -- $train_args
      stage_mark_done "$am_exp/.done" "$params"
    fi
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 4: package the averaged model as a self-contained folder (weights, tokens, features, CMVN)
  if stage_wanted 4; then
    [ -f "$am_exp/.done" ] || { echo "$0: stage 4 needs a trained model (./run.sh --stage 3)" >&2; exit 1; }
    params="am=[$(file_digest "$am_exp/.done" "$am_exp"/checkpoints/avg_best*.pt)]"
    if ! stage_is_done "$am_exp/.package.done" "$params" "stage 4 (package)"; then
      run_logged asr package --exp "$am_exp" --out "$am_exp/package_greedy"
      stage_mark_done "$am_exp/.package.done" "$params"
    fi
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 5: greedy decoding of the dev and test sets, Stage 6: scoring (RESULTS.md)
  for s in $eval_sets; do
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

  # ----------------------------------------------------------------------------------------------
  # Stage 7: train the LSTM language model on text that excludes every dev and test sentence
  if stage_wanted 7; then
    [ -f "$lm_train_text" ] || { echo "$0: stage 7 needs the LM text $lm_train_text (stage 0 writes it)" >&2; exit 1; }
    [ -f "$lang/tokens.txt" ] || { echo "$0: stage 7 needs $lang/tokens.txt: run stage 1 with --token_type $token_type" >&2; exit 1; }
    params="text=[$(file_digest "$lm_train_text" "$lm_dev_text")] conf=$lm_conf@$(file_digest "$lm_conf") train=$lm_train_conf@$(file_digest "$lm_train_conf") args=[$lm_args]$tokens_param"
    local lm_init=()
    if [ -n "$lm_init_from" ]; then
      lm_init=(--init-from "$lm_init_from")
      params+=" init_from=$lm_init_from@$(init_digest "$lm_init_from")"
    fi
    if ! stage_is_done "$lm_exp/.done" "$params" "stage 7 (LSTM LM)"; then
      if [ -f "$lm_exp/.params" ] && [ "$(cat "$lm_exp/.params")" != "$params" ]; then
        mv "$lm_exp" "$lm_exp.old.$(date +%Y%m%d%H%M%S)"
      fi
      mkdir -p "$lm_exp"
      printf '%s\n' "$params" > "$lm_exp/.params"
      # shellcheck disable=SC2086
      run_logged asr train-lm --text "$lm_train_text" --dev-text "$lm_dev_text" \
        --tokens "$lang/tokens.txt" --exp "$lm_exp" --conf "$lm_conf" --train-conf "$lm_train_conf" \
        --device "$device" "${lm_init[@]}" -- $lm_args
      stage_mark_done "$lm_exp/.done" "$params"
    fi
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 8: final model package $model_dir = acoustic model + LM, alpha/beta tuned on dev only
  if stage_wanted 8; then
    [ -f "$lm_exp/.done" ] || { echo "$0: stage 8 needs the LM (./run.sh --stage 7)" >&2; exit 1; }
    params="am=[$(file_digest "$am_exp/.package.done")] lm=[$(file_digest "$lm_exp/.done")] beam=$beam$tune_param"
    if ! stage_is_done "$model_marker" "$params" "stage 8 (package + tune alpha/beta on dev)"; then
      run_logged asr package --exp "$am_exp" --lm-exp "$lm_exp" --out "$model_dir"
      run_logged asr tune-lm-weight --model "$model_dir" --data "data/$dev_set" --beam "$beam" --search "$tune_search"
      stage_mark_done "$model_marker" "$params"
    fi
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 9: beam search + LM decoding of the dev and test sets with the tuned package, and scoring
  if stage_wanted 9; then
    for s in $eval_sets; do
      params="pkg=[$(file_digest "$model_dir"/package.json)] data=[$(file_digest data/.stage2.done)]"
      if ! stage_is_done "$am_exp/decode_beam_lm_$s/.done" "$params" "stage 9 (beam+LM decode $s)"; then
        run_logged asr decode --model "$model_dir" --data "data/$s" --out "$am_exp/decode_beam_lm_$s" --nj "$nj"
        stage_mark_done "$am_exp/decode_beam_lm_$s/.done" "$params"
      fi
      local a b
      a=$(grep '^alpha' "$model_dir"/decode.yaml | awk '{print $2}'); b=$(grep '^beta' "$model_dir"/decode.yaml | awk '{print $2}')
      run_logged asr score --data "data/$s" --decode "$am_exp/decode_beam_lm_$s" --exp "$am_exp" \
        --name "${s}_beam_lm" --description "beam $beam + LSTM LM, alpha=$a beta=$b (tuned on dev)"
    done
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 10: ONNX export (+ int8) with a PyTorch parity check -> $onnx_dir (torch-free runtime)
  if stage_wanted 10; then
    # --dev-data: the runtime's fp32 and int8 WER on the dev set, in $onnx_dir/export_report.json
    params="pkg=[$(file_digest "$model_dir"/package.json)] dev=$dev_set"
    if ! stage_is_done "$onnx_marker" "$params" "stage 10 (ONNX export)"; then
      run_logged asr export --model "$model_dir" --out "$onnx_dir" --int8 --dev-data "data/$dev_set"
      stage_mark_done "$onnx_marker" "$params"
    fi
  fi

  # ----------------------------------------------------------------------------------------------
  # Stage 11: word n-gram LM (built from the LM text, or --arpa FILE), its package and decoding
  if stage_wanted 11; then
    [ -f "$model_marker" ] || { echo "$0: stage 11 needs the stage 8 package (./run.sh --stage 8)" >&2; exit 1; }
    local ngram_src
    if [ -n "$arpa" ]; then
      [ -f "$arpa" ] || { echo "$0: stage 11: --arpa $arpa: no such file" >&2; exit 1; }
      ngram_src="arpa=$(file_digest "$arpa")"
    else
      [ -f "$lm_train_text" ] || { echo "$0: stage 11 needs the LM text $lm_train_text (stage 0 writes it)" >&2; exit 1; }
      ngram_src="text=[$(file_digest "$lm_train_text")] order=$ngram_order prune=[$ngram_prune]"
    fi
    local ngram_file=exp/ngram/lm.arpa
    if [ -n "$arpa" ]; then
      ngram_file=$arpa  # asr package checks it (and unpacks a .gz)
    elif ! stage_is_done exp/ngram/.done "$ngram_src" "stage 11 (n-gram LM)"; then
      mkdir -p exp/ngram
      local prune_args=()
      [ -n "$ngram_prune" ] && read -r -a prune_args <<< "--prune $ngram_prune"
      run_logged asr build-ngram --text "$lm_train_text" --order "$ngram_order" "${prune_args[@]}" --out exp/ngram/lm.arpa
      stage_mark_done exp/ngram/.done "$ngram_src"
    fi
    if [ -n "$ngram_binary" ] && [ "$(head -c 33 "$ngram_file" | tr -d '\0')" != "mmap lm http://kheafield.com/code" ]; then
      case "$ngram_binary" in probing|trie) ;; *)
        echo "$0: --ngram_binary $ngram_binary: must be probing or trie (or empty for the ARPA file)" >&2; exit 1;; esac
      ngram_src="$ngram_src binary=$ngram_binary"
      mkdir -p exp/ngram
      if ! stage_is_done exp/ngram/.binary.done "$ngram_src" "stage 11 (KenLM $ngram_binary binary)"; then
        run_logged asr build-ngram --arpa "$ngram_file" --binary exp/ngram/lm.binary --binary-type "$ngram_binary"
        stage_mark_done exp/ngram/.binary.done "$ngram_src"
      fi
      ngram_file=exp/ngram/lm.binary
    fi
    local ngram_marker
    ngram_marker="$(dirname "$ngram_model_dir")/.$(basename "$ngram_model_dir").done"
    params="am=[$(file_digest "$am_exp/.package.done")] lm=[$(file_digest "$lm_exp/.done")] ngram=[$ngram_src] beam=$beam$tune_param"
    if ! stage_is_done "$ngram_marker" "$params" "stage 11 (package with the n-gram LM + tune on dev)"; then
      run_logged asr package --exp "$am_exp" --lm-exp "$lm_exp" --ngram "$ngram_file" --out "$ngram_model_dir"
      run_logged asr tune-lm-weight --model "$ngram_model_dir" --data "data/$dev_set" --beam "$beam" --search "$tune_search"
      stage_mark_done "$ngram_marker" "$params"
    fi
    for s in $eval_sets; do
      params="pkg=[$(file_digest "$ngram_model_dir"/package.json)] data=[$(file_digest data/.stage2.done)]"
      if ! stage_is_done "$am_exp/decode_beam_ngram_$s/.done" "$params" "stage 11 (beam+n-gram decode $s)"; then
        run_logged asr decode --model "$ngram_model_dir" --data "data/$s" --out "$am_exp/decode_beam_ngram_$s" --nj "$nj"
        stage_mark_done "$am_exp/decode_beam_ngram_$s/.done" "$params"
      fi
      local w a b u
      w=$(grep '^ngram_weight' "$ngram_model_dir"/decode.yaml | awk '{print $2}'); a=$(grep '^alpha' "$ngram_model_dir"/decode.yaml | awk '{print $2}')
      b=$(grep '^beta' "$ngram_model_dir"/decode.yaml | awk '{print $2}'); u=$(grep '^use_lm' "$ngram_model_dir"/decode.yaml | awk '{print $2}')
      local desc="beam $beam + word n-gram LM (${arpa:-order $ngram_order}, weight $w), beta=$b"
      [ "$u" = true ] && desc="$desc + LSTM LM alpha=$a ($(grep '^lstm_mode' "$ngram_model_dir"/decode.yaml | awk '{print $2}'))"
      desc="$desc (tuned on dev)"
      run_logged asr score --data "data/$s" --decode "$am_exp/decode_beam_ngram_$s" --exp "$am_exp" \
        --name "${s}_beam_ngram" --description "$desc"
    done
  fi

  if [ -f "$am_exp/RESULTS.md" ]; then
    echo
    cat "$am_exp/RESULTS.md"
    local wer gwer
    for s in $test_sets; do
      wer=$(grep "^| ${s}_beam_lm " "$am_exp/RESULTS.md" | awk -F'|' '{print $3}' || true)
      gwer=$(grep "^| ${s}_greedy " "$am_exp/RESULTS.md" | awk -F'|' '{print $3}' || true)
      [ -n "$gwer" ] && log "$s WER (greedy): ${gwer// /}%"
      [ -n "$wer" ] && log "$s WER (beam + LM): ${wer// /}%"
      wer=$(grep "^| ${s}_beam_ngram " "$am_exp/RESULTS.md" | awk -F'|' '{print $3}' || true)
      [ -n "$wer" ] && log "$s WER (beam + n-gram LM): ${wer// /}%"
    done
  fi

  log "finished (stages $stage..$stop_stage)"
}
