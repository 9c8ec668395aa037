// Resampling microphone audio to 16 kHz. Pure code, no Web Audio API: the capture worklet
// (worklet.js) runs it on the audio thread, and the tests run it under Node.
//
// Policy: anti-alias first, then interpolate. Every input sample goes through a windowed-sinc
// low-pass (Blackman window, -6 dB at 7.2 kHz, flat to 6 kHz, below -80 dB from 9 kHz), so that
// almost nothing above the output's 8 kHz Nyquist folds back into the speech band. Each output
// sample is then read at its fractional input position by linear interpolation between the two
// filtered neighbours: exact at 48 kHz (every output falls on an input sample), within 0.5 dB up to
// 6 kHz at 44.1 kHz. The filter spans the same time at every input rate (16 output samples each
// side). Input already at the output rate passes through unchanged. State carries over between
// blocks: a stream of 128-sample render quanta gives the output of one long block, delayed by half
// the filter (1 ms).

export const TARGET_RATE = 16000;
const CUTOFF_HZ = 7200;
const HALF_WIDTH = 16; // filter half-length, in output samples

// A linear-phase low-pass, 2 * half + 1 taps, unity gain at 0 Hz.
export function lowPass(cutoffHz, rate, half) {
  const taps = new Float32Array(2 * half + 1);
  const fc = cutoffHz / rate; // cycles per sample
  let sum = 0;
  for (let i = 0; i < taps.length; i++) {
    const t = i - half;
    const sinc = t === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * t) / (Math.PI * t);
    const w = (2 * Math.PI * i) / (taps.length - 1);
    const blackman = 0.42 - 0.5 * Math.cos(w) + 0.08 * Math.cos(2 * w);
    taps[i] = sinc * blackman;
    sum += taps[i];
  }
  return taps.map((v) => v / sum);
}

export class Resampler {
  constructor(rateIn, rateOut = TARGET_RATE) {
    this.step = rateIn / rateOut; // input samples per output sample
    this.bypass = rateIn === rateOut;
    const half = Math.ceil(HALF_WIDTH * Math.max(1, this.step));
    // Never above 90 % of the input's own Nyquist (a mic slower than 16 kHz is upsampled).
    this.taps = lowPass(Math.min(CUTOFF_HZ, 0.45 * rateIn), rateIn, half);
    this.history = new Float32Array(this.taps.length - 1); // the last raw samples; silence at start
    this.previous = 0; // the filtered sample just before the current block
    this.pos = 0; // next output position, in samples from the start of the current block
  }

  // Float32Array in, Float32Array out (a new array; about input.length / step samples).
  process(input) {
    if (this.bypass) return Float32Array.from(input);
    const y = this.filter(input);
    const out = new Float32Array(Math.ceil(y.length / this.step) + 1);
    let n = 0;
    for (; this.pos < y.length - 1; this.pos += this.step) {
      const i = Math.floor(this.pos); // -1 <= i <= y.length - 2
      const a = i < 0 ? this.previous : y[i];
      out[n++] = a + (y[i + 1] - a) * (this.pos - i);
    }
    this.pos -= y.length;
    if (y.length) this.previous = y[y.length - 1];
    return out.subarray(0, n);
  }

  // The low-passed input, one filtered sample per input sample.
  filter(input) {
    const { taps, history } = this;
    const x = new Float32Array(history.length + input.length);
    x.set(history);
    x.set(input, history.length);
    const y = new Float32Array(input.length);
    for (let k = 0; k < y.length; k++) {
      let acc = 0;
      for (let j = 0; j < taps.length; j++) acc += taps[j] * x[k + j];
      y[k] = acc;
    }
    this.history = x.slice(input.length);
    return y;
  }
}
