"""Word n-gram language models: ARPA files (read and written here), the compact tables the beam
search scores them with, and a modified Kneser-Ney builder (``asr build-ngram``)."""
