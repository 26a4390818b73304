# --preset large_cpu: a few CPU-hours instead of 45 minutes (the recipe of the shipped pretrained
# model, asr/pretrained/). Same corpus and features as the default (stages 0-2 are shared), a
# larger x4 model (conf/model_large_cpu.yaml), 10 epochs with VTLP on one thread
# (conf/train_large_cpu.yaml), beam 100; its own experiment folders, so the default's stay.
# Options given on the command line still win (e.g. --train_args "--train.threads 2").
model_conf=conf/model_large_cpu.yaml
train_conf=conf/train_large_cpu.yaml
lm_train_conf=conf/lm_train_large_cpu.yaml   # the LM of 15 epochs (the default's 45-min budget has 10)
lm_exp=exp/large_cpu_lm
am_exp=exp/large_cpu
model_dir=exp/large_cpu_model
onnx_dir=exp/large_cpu_onnx
beam=100
ngram_model_dir=exp/large_cpu_model_ngram
