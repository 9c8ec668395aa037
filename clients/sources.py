"""Audio sources for the command-line clients: async iterators of mono int16 PCM frames (~100 ms).

`MicSource` captures a microphone through sounddevice/PortAudio (the optional `mic` extra), at 16 kHz
when the device offers it, else at its own rate (the server resamples); `FileSource` plays any file soundfile reads, paced at
`speed` x real time (None: as fast as the server takes it).
"""
from __future__ import annotations

import asyncio
import time


FRAME_SECONDS = 0.1
MIC_HELP = "the microphone needs sounddevice and PortAudio: pip install 'asrstream[mic]' (Debian: apt-get install libportaudio2)"


class FileSource:
    def __init__(self, path: str, speed: float | None = None):
        import soundfile as sf

        try:
            x, self.rate = sf.read(path, dtype="int16", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise ValueError(f"cannot read audio file {path}: {e}") from None
        if not 8000 <= self.rate <= 48000:
            raise ValueError(f"{path}: sample rate {self.rate} Hz is outside 8000-48000 Hz; convert it first")
        self.pcm = x.mean(axis=1).round().astype("<i2") if x.shape[1] > 1 else x[:, 0].astype("<i2")
        self.speed = speed

    @property
    def seconds(self) -> float:
        return len(self.pcm) / self.rate

    async def __aiter__(self):
        step = round(self.rate * FRAME_SECONDS)
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, len(self.pcm), step)):
            yield self.pcm[i : i + step].tobytes()
            if self.speed:
                await asyncio.sleep(max(0.0, t0 + (k + 1) * FRAME_SECONDS / self.speed - time.perf_counter()))


class MicSource:
    def __init__(self, device: int | str | None = None):
        sd = _sounddevice()
        try:
            info = sd.query_devices(device, kind="input")
        except (ValueError, sd.PortAudioError) as e:
            raise ValueError(f"no microphone input{'' if device is None else f' {device!r}'} found ({e}); "
                             "see asrstream mic --list-devices") from None
        self.device, self.rate = device, 16000  # 16 kHz when the device offers it, else its own rate
        try:
            sd.check_input_settings(device, samplerate=16000, channels=1, dtype="int16")
        except (ValueError, sd.PortAudioError):
            self.rate = int(info["default_samplerate"])
        if not 8000 <= self.rate <= 48000:
            raise ValueError(f"microphone rate {self.rate} Hz is outside 8000-48000 Hz; pick another --device")

    async def __aiter__(self):
        sd = _sounddevice()
        loop = asyncio.get_running_loop()
        frames: asyncio.Queue[bytes] = asyncio.Queue()

        def callback(data, n, when, status) -> None:  # PortAudio's thread
            loop.call_soon_threadsafe(frames.put_nowait, bytes(data))

        with sd.RawInputStream(samplerate=self.rate, channels=1, dtype="int16", device=self.device,
                               blocksize=round(self.rate * FRAME_SECONDS), callback=callback):
            while True:
                yield await frames.get()


def list_devices() -> str:
    sd = _sounddevice()
    inputs = [(i, d) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]
    if not inputs:
        return "no input devices found\n"
    return "".join(f"{i:3d}  {d['name']}  ({int(d['default_samplerate'])} Hz)\n" for i, d in inputs)


def _sounddevice():
    try:
        import sounddevice
    except (ImportError, OSError):  # OSError: the PortAudio library is missing
        raise RuntimeError(MIC_HELP) from None
    return sounddevice
