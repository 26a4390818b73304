"""Synthetic speech corpus generation from offline TTS engines (stage 0 of recipes/tts_en).

- text_sources.py: public-domain sentences shipped in packages (fortunes, gensim's Lee corpus),
  cleaned, normalised and deduplicated.
- voices.py: the voice catalogue (espeak-ng, flite, festival, Piper) and its train/dev/test split.
- synth.py: one function per engine, returning float32 audio at the engine's native rate.
- augment.py: seeded per-utterance augmentation (speed, band-limit, reverb, noise, gain).
- generate.py: plan -> parallel synthesis -> Kaldi data dirs, LM text and corpus stats.
  ``python -m asr.synthesis.generate --help``.
"""
