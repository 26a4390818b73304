// AudioWorklet processor: mixes the microphone down to mono and posts blocks of `blockSize`
// float32 samples (at the AudioContext's rate) to the page, which sends them to the server.
class AsrCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.blockSize = options.processorOptions.blockSize;
    this.buf = new Float32Array(this.blockSize);
    this.n = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const frames = input[0].length;
    for (let i = 0; i < frames; i++) {
      let s = 0;
      for (let c = 0; c < input.length; c++) s += input[c][i];
      this.buf[this.n++] = s / input.length;
      if (this.n === this.blockSize) {
        this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
        this.buf = new Float32Array(this.blockSize);
        this.n = 0;
      }
    }
    return true;
  }
}

registerProcessor("asr-capture", AsrCapture);
