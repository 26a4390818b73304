"""Neural network modules: the CTC acoustic model and the LSTM language model."""
