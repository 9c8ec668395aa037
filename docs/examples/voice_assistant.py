"""A voice-assistant frontend on the asrstream SDK: turn-taking and barge-in.

- The user's turn ends on a `transcript.final` whose reason is `endpoint` (the server heard the
  silence that ends an utterance): that text goes to the assistant, which then "speaks".
- Barge-in: a `speech.started` while the assistant is speaking means the user talks over it: stop
  the assistant's audio at once and listen.

    python docs/examples/voice_assistant.py --url ws://127.0.0.1:8000/v1/asr speech.wav

A WAV file stands in for the microphone here (played in real time); `asrstream.clients.sources.MicSource`
gives the same frames from a real one.
"""
from __future__ import annotations

import argparse
import asyncio

from asrstream.clients.sdk import StreamingClient
from asrstream.clients.sources import FileSource
from asrstream.protocol.messages import SpeechStarted, TranscriptFinal


class Assistant:
    """Stands in for the reply side: 'speaks' for a while after each user turn."""

    def __init__(self, speak_seconds: float):
        self.speak_seconds, self.speaking = speak_seconds, None

    def reply(self, text: str) -> None:
        print(f"user: {text}", flush=True)
        self.speaking = asyncio.get_running_loop().create_task(asyncio.sleep(self.speak_seconds))

    def barge_in(self) -> None:
        if self.speaking is not None and not self.speaking.done():
            self.speaking.cancel()  # a real frontend stops its audio playback here
            print("barge-in: assistant stopped", flush=True)


async def main(url: str, path: str, speak_seconds: float) -> None:
    assistant = Assistant(speak_seconds)
    source = FileSource(path, speed=1.0)
    async with StreamingClient(url, sample_rate=source.rate) as client:
        async def send() -> None:
            async for frame in source:
                await client.send_audio(frame)
            await client.close()

        sender = asyncio.create_task(send())
        async for event in client:
            if isinstance(event, SpeechStarted):
                assistant.barge_in()
            elif isinstance(event, TranscriptFinal) and event.reason == "endpoint":
                assistant.reply(event.text)
        await sender


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file")
    p.add_argument("--url", default="ws://127.0.0.1:8000/v1/asr")
    p.add_argument("--speak-seconds", type=float, default=3.0, help="how long the assistant talks per reply")
    a = p.parse_args()
    asyncio.run(main(a.url, a.file, a.speak_seconds))
