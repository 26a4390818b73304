"""CTC decoding: greedy (best path) and prefix beam search with LM shallow fusion."""
