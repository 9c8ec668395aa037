// The capture AudioWorklet: microphone samples in, 100 ms frames of 16 kHz pcm_s16le out.
//
// Policy: resampling runs here, on the audio thread, at the context's own rate (whatever the
// device gives: 44.1 kHz, 48 kHz, ...). The node is mono (channelCount 1: the audio graph downmixes
// a stereo mic). Samples are clipped to [-1, 1], scaled by 32767, rounded, and written
// little-endian, as pcm_s16le says on every platform. A frame is posted to the page, its buffer
// transferred, as soon as it holds 1600 samples: 3200 bytes every 100 ms, as the protocol's example.
import { Resampler, TARGET_RATE } from "./resample.js";

const FRAME_SAMPLES = TARGET_RATE / 10;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate); // sampleRate: the AudioContext's, a worklet global
    this.newFrame();
  }

  newFrame() {
    this.frame = new DataView(new ArrayBuffer(2 * FRAME_SAMPLES));
    this.filled = 0;
  }

  process(inputs) {
    const mono = inputs[0][0]; // absent while nothing is connected
    if (mono) for (const s of this.resampler.process(mono)) this.append(s);
    return true; // keep the node alive as long as the page holds it
  }

  append(sample) {
    const v = Math.max(-1, Math.min(1, sample));
    this.frame.setInt16(2 * this.filled++, Math.round(v * 32767), true);
    if (this.filled === FRAME_SAMPLES) {
      this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
      this.newFrame();
    }
  }
}

registerProcessor("asrstream-capture", CaptureProcessor);
