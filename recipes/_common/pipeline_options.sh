#!/usr/bin/env bash
# Default values of the options every recipe shares (stages 1-11 of recipes/_common/pipeline.sh).
# Source it after the recipe's own options and before parse_options.sh; a recipe that wants another
# default sets the variable before sourcing this file (only unset variables get these values).
#
#   nj                parallel processes for feature extraction and decoding shards
#   token_type        char (data/lang_char) | bpe (sentencepiece on the training transcripts: data/lang_bpe_$nbpe)
#   nbpe              BPE: sentencepiece vocabulary size (incl. <unk>; the model outputs nbpe + 1 with <blank>)
#   speed_perturb     true: 3-way speed perturbation (0.9/1.0/1.1, Kaldi style) of the training set in
#                     stage 1 (data/<train_set>_sp, which stages 2-3 use); noise/reverb are train config options
#   feat_conf         feature config (conf/features/*.yaml)
#   train_dither      D > 0: the training set's features are computed from audio with Gaussian dither of
#                     std D int16 units added (--feat.dither D; dev/test features and recognition stay
#                     undithered; with on-the-fly training a new draw every epoch); "" or 0: none
#   model_conf        acoustic model (conf/model/*.yaml)
#   train_conf        training loop (conf/train/*.yaml)
#   train_args        extra overrides, e.g. "--train.epochs 20 --model.hidden 320"
#   nproc_per_node    >1: train with torchrun --standalone --nproc_per_node N (DDP, one process per GPU)
#   nnodes            >1 (or a range such as 1:4): stage 3 joins a multi-node torchrun through the c10d
#                     rendezvous at rdzv_endpoint (start the same ./run.sh --stage 3 on every node, the
#                     recipe dir on storage that every node sees); rdzv_id names the job
#   max_restarts      torchrun restarts of the worker group after a failed worker (it resumes from last.pt)
#   am_exp            acoustic model experiment dir
#   init_from         stage 3 fine-tunes from this model package / checkpoint (asr train --init-from; "": from scratch)
#   lm_init_from      stage 7 fine-tunes the LM from this package's lm.pt / LM checkpoint ("": from scratch)
#   lm_conf           LSTM LM (conf/model/lm_*.yaml);  lm_train_conf: its training loop
#   lm_args           extra LM overrides, e.g. "--train.epochs 5"
#   lm_exp            LM experiment dir
#   model_dir         final package (acoustic model + LM, alpha/beta tuned on dev)
#   onnx_dir          its ONNX export (fp32 + int8, torch-free runtime)
#   beam              beam width for LM decoding
#   device            auto (CUDA when present) | cpu | cuda
#   ngram_order       order of the word n-gram LM stage 11 builds from the LM text (modified Kneser-Ney)
#   ngram_prune       its pruning, counts per order from 2 (e.g. "0 1 1": drop singleton 3- and 4-grams)
#   arpa              an ARPA file to use in stage 11 instead of building one (e.g. LibriSpeech's 4-gram),
#                     or a KenLM binary file (build_binary's output; decoded through the kenlm module)
#   ngram_binary      "" (package the ARPA file) | probing | trie: package stage 11's LM as a KenLM binary
#   tune_search       grid | local: how asr tune-lm-weight searches the LM weights on dev (stages 8 and 11);
#                     local scores only the neighbours on the way to each line's best value (about half
#                     the decodes)
#                     of that type (KenLM's build_binary, from `asr build-kenlm`; decoded through kenlm)
#   ngram_model_dir   stage 11's package (acoustic model + LSTM LM + n-gram LM, weights tuned on dev)

: "${nj:=2}"
: "${token_type:=char}"
: "${nbpe:=500}"
: "${speed_perturb:=false}"
: "${feat_conf:=conf/fbank.yaml}"
: "${train_dither:=}"
: "${model_conf:=conf/model.yaml}"
: "${train_conf:=conf/train.yaml}"
: "${train_args:=}"
: "${nproc_per_node:=1}"
: "${nnodes:=1}"
: "${rdzv_endpoint:=}"
: "${rdzv_id:=asr}"
: "${max_restarts:=0}"
: "${am_exp:=exp/bilstm_ctc}"
: "${init_from:=}"
: "${lm_init_from:=}"
: "${lm_conf:=conf/lm.yaml}"
: "${lm_train_conf:=conf/lm_train.yaml}"
: "${lm_args:=}"
: "${lm_exp:=exp/lstm_lm}"
: "${model_dir:=exp/model}"
: "${onnx_dir:=exp/model_onnx}"
: "${beam:=10}"
: "${device:=auto}"
: "${ngram_order:=4}"
: "${ngram_prune:=}"
: "${arpa:=}"
: "${ngram_binary:=}"
: "${tune_search:=grid}"
: "${ngram_model_dir:=exp/model_ngram}"
