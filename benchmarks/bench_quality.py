"""Quality figures of an ASR model and a forced aligner, offline and streamed through the server.

- offline WER on manifests (training/wer.py's normaliser), e.g. the held-out synthetic voices;
- offline WER on the real speech in ../shared/audio (each clip's .txt is its reference);
- the same held-out audio streamed through a real server (127.0.0.1, port 0; 100 ms frames sent as
  fast as the server takes them, then close_stream): WER of the finals, the share of utterances
  whose finals equal the offline transcript of the same audio, WER of the last partial before each
  final, how often a final revises its last partial, and the share of partials whose stable_text a
  later partial or the final kept (must be 100 %);
- the aligner's mean absolute word-boundary error against a timed manifest's word times;
- with `--ctc-head <out>/last/training_state.pt` (a run with --ctc-weight), the WER of that CTC
  head's best-path transcripts: what the encoder alone has learned (training/evaluate.py).

Manifests are training/manifest.py's JSONL (`asrstream corpus` writes held-out ones).

    python benchmarks/bench_quality.py --model M --aligner A --eval data/fast/heldout.jsonl \
        --timed data/fast/heldout_timed.jsonl --n 60
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path


HERE = Path(__file__).resolve().parent
AUDIO = HERE.parent.parent / "shared" / "audio"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="ASR checkpoint (directory or hub id)")
    p.add_argument("--aligner", default=None, help="forced aligner (the streamed finals' words; --timed)")
    p.add_argument("--eval", type=Path, nargs="*", default=[], help="manifests for offline (and streamed) WER")
    p.add_argument("--timed", type=Path, nargs="*", default=[], help="timed manifests for the aligner's error")
    p.add_argument("--n", type=int, default=60, help="rows of each manifest used")
    p.add_argument("--stream", type=int, default=30, help="rows of each --eval manifest also streamed (0: none)")
    p.add_argument("--real", action=argparse.BooleanOptionalAction, default=True, help="../shared/audio")
    p.add_argument("--ctc-head", type=Path, default=None, help="a training_state.pt with a CTC head: its WER too")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    import torch

    from asrstream import load_aligner, load_model
    from asrstream.training.manifest import read_manifest
    from asrstream.training.trainer import ctc_head

    if args.timed and not args.aligner:
        p.error("--timed needs --aligner")
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.2f}, model {args.model}, aligner {args.aligner}")
    model = load_model(args.model, dtype="float32")
    aligner = load_aligner(args.aligner, dtype="float32") if args.aligner else None
    try:
        head = ctc_head(model.cfg, source=args.ctc_head) if args.ctc_head else None
    except ValueError as e:
        p.error(str(e))
    for m in args.eval:
        rows = read_manifest(m)[: args.n]
        offline = offline_wer(model, rows, m, head)
        if args.stream:
            asyncio.run(streamed(model, aligner, rows[: args.stream], offline, m))
    if args.real:
        real_speech(model)
    for m in args.timed:
        from asrstream.training.evaluate import boundary_error_ms

        rows = read_manifest(m, need_words=True)[: args.n]
        print(f"aligner {m}: {boundary_error_ms(aligner, rows):.1f} ms mean absolute boundary error, {len(rows)} rows")


def offline_wer(model, rows, name, head=None) -> list[str]:
    """Prints the rows' offline WER (and the CTC head's); returns the transcripts."""
    from asrstream.encoder.audio import load_audio
    from asrstream.training.evaluate import ctc_transcript
    from asrstream.training.wer import wer

    t0, hyps, ctc, seconds = time.perf_counter(), [], [], 0.0
    for r in rows:
        audio = load_audio(r.audio)
        hyps.append(model.transcribe(audio).text)
        ctc += [ctc_transcript(model, head, audio)] if head is not None else []
        seconds += len(audio) / 16000
    refs = [r.text for r in rows]
    also = f", CTC head {100 * wer(refs, ctc):.1f} %" if head is not None else ""
    print(f"offline {name}: WER {100 * wer(refs, hyps):.1f} %{also} over {len(rows)} rows "
          f"({seconds:.0f} s of audio in {time.perf_counter() - t0:.1f} s)")
    return hyps


def real_speech(model) -> None:
    from asrstream.encoder.audio import load_audio
    from asrstream.training.wer import wer

    refs, hyps = [], []
    for wav in sorted(AUDIO.glob("*.wav")):
        ref = wav.with_suffix(".txt").read_text(encoding="utf-8")
        hyp = model.transcribe(load_audio(wav)).text
        refs.append(ref), hyps.append(hyp)
        print(f"real {wav.name}: WER {100 * wer([ref], [hyp]):.1f} %")
    if refs:
        print(f"real speech, all clips: WER {100 * wer(refs, hyps):.1f} %")


async def streamed(model, aligner, rows, offline: list[str], name) -> None:
    """Streams each row through a real server; compares with the rows' `offline` transcripts."""
    from asrstream.clients.sdk import StreamingClient
    from asrstream.encoder.audio import load_audio
    from asrstream.protocol.messages import TranscriptFinal, TranscriptPartial
    from asrstream.protocol.server import Server, ServerSettings
    from asrstream.streaming import Engine
    from asrstream.training.wer import normalize, wer

    server = Server(ServerSettings(port=0, model_name="bench"), Engine(model, aligner))
    await server.start()
    finals, last_partials, revised, segments, kept, partials = [], [], 0, 0, 0, 0
    try:
        for r in rows:
            audio = load_audio(r.audio)
            async with StreamingClient(f"ws://127.0.0.1:{server.port}/v1/asr", language="English") as client:
                for i in range(0, len(audio), 1600):
                    await client.send_audio(audio[i : i + 1600])
                await client.close(timeout=300)
                events = [ev async for ev in client]
            fin = [e for e in events if isinstance(e, TranscriptFinal)]
            finals.append(" ".join(e.text for e in fin))
            last = []
            for f in fin:
                ps = [e for e in events if isinstance(e, TranscriptPartial) and e.segment_id == f.segment_id]
                last.append(ps[-1].text if ps else "")
                if ps:  # a final with no partial before it revises nothing the user saw
                    segments += 1
                    revised += normalize(ps[-1].text) != normalize(f.text)
                later = [e.stable_text for e in ps[1:]] + [f.text]
                kept += sum(all(t.startswith(e.stable_text) for t in later[k:]) for k, e in enumerate(ps))
                partials += len(ps)
            last_partials.append(" ".join(last))
    finally:
        await server.stop()
    refs, offline = [r.text for r in rows], offline[: len(rows)]
    same = sum(normalize(a) == normalize(b) for a, b in zip(finals, offline))
    print(f"streamed {name}: finals WER {100 * wer(refs, finals):.1f} % (offline {100 * wer(refs, offline):.1f} %), "
          f"finals equal offline {same}/{len(rows)}, last partials' WER {100 * wer(refs, last_partials):.1f} %, "
          f"{revised} of {segments} finals after partials revise the last one ({100 * revised / max(1, segments):.1f} %), "
          f"stable_text kept {kept}/{partials} ({100 * kept / max(1, partials):.2f} %)")


if __name__ == "__main__":
    main()
