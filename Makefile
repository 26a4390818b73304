# Two commands on a fresh machine (see README):
#   make recipe   - install what is missing, then run recipes/tts_en end to end
#   make test     - install what is missing, then run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the recipe and the tests use: TTS engines for the generated corpus, sox,
# text corpora, PortAudio + PulseAudio for the microphone demo and its fake-microphone test,
# the real human recordings of the real-speech dev set (pocketsphinx-testdata, alsa-utils), and g++
# for KenLM's build_binary (make kenlm).
APT_PKGS := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
            fortunes fortunes-min libportaudio2 pulseaudio pulseaudio-utils \
            pocketsphinx-testdata alsa-utils g++
APT_STAMP := .apt-installed
EXTRAS := train,dev,live,corpus,kokoro,serve

.PHONY: all venv deps kenlm recipe test test-fast bench clean-venv

all: test

$(APT_STAMP):
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@touch $(APT_STAMP)

deps: $(APT_STAMP)

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	@touch $(STAMP)

# KenLM's build_binary + query (KenLM binary n-gram LMs; tests/test_ngram_binary.py), compiled from the
# kenlm source release into ~/.cache/asr/kenlm/bin (about 30 s with g++ on one idle core, 3 min on a busy
# one; a no-op once there). Without a compiler or the source those tests skip and say why.
kenlm: venv
	@$(VENV)/bin/asr build-kenlm || echo "make: KenLM's build_binary not built: the KenLM binary tests will skip"

venv: $(STAMP)

recipe: deps venv
	cd recipes/tts_en && PATH=$(CURDIR)/$(VENV)/bin:$$PATH ./run.sh $(ARGS)

test: deps venv kenlm
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: deps venv
	$(PY) -m pip install -q -e '.[$(EXTRAS),bench]'
	$(PY) -m pip install -q --no-deps 'pyctcdecode>=0.5,<0.6'  # pins numpy<2 but runs on numpy 2
	$(PY) tools/bench/features.py
	$(PY) tools/bench/beam.py
	$(PY) tools/bench/runtime.py
	@if [ -f recipes/tts_en/exp/model/package.json ]; then \
	  cd recipes/tts_en && ../../$(PY) local/real_speech.py && \
	  ../../$(PY) ../../tools/bench/peers.py --data data/test data/real_dev --model exp/model --out exp/peers.md; \
	else echo "peers bench skipped: it compares recipes/tts_en/exp/model, run 'make recipe' first"; fi

clean-venv:
	rm -rf $(VENV) $(APT_STAMP)
