"""The streaming engine end to end on tiny checkpoints, with speech synthesized by espeak-ng."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from asrstream import load_model
from asrstream.decoder.generate import DecodingOptions
from asrstream.streaming.engine import Engine
from asrstream.streaming.events import Error, Final, Partial, SpeechStarted
from asrstream.streaming.options import StreamOptions
from asrstream.testmodel import make_test_model

from .speech import SENTENCES, SR, noise, silence, spans_of, tts
from .streams import closed, finals, partials, run_session

NEW = 40  # hypothesis cap: random weights rarely say EOS, keep decodes short


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Same weights (seed 0), attention windows of 1, 2 and 8 s."""
    out = {}
    for w in (1, 2, 8):
        d = make_test_model(tmp_path_factory.mktemp(f"w{w}"), "asr", "tiny", seed=0,
                            overrides={"audio": {"n_window_infer": 100 * w}})
        out[w] = load_model(str(d), dtype="float32")
    return out


@pytest.fixture(scope="module")
def engine(models):
    e = Engine(models[8])
    yield e
    e.shutdown()


def _opts(**kw) -> StreamOptions:
    return StreamOptions(**{"max_new_tokens": NEW, "max_tokens_per_second": None, **kw})


def _offline_ids(model, audio: np.ndarray, final: Final) -> list[int]:
    seg = audio[round(final.start * SR) : round(final.end * SR)]
    return model.transcribe(seg, options=DecodingOptions(max_new_tokens=NEW)).token_ids


def _three_utterances():
    """Speech, a long pause (endpoint), speech then finalize, speech then close."""
    audio, spans = spans_of([silence(0.4), tts(SENTENCES[0]), silence(1.2), tts(SENTENCES[1]), tts(SENTENCES[2])])
    return audio, {int(spans[3][1] * SR) // 16 * 16: "finalize"}


@pytest.mark.parametrize("window", [1, 2, 8])
@pytest.mark.parametrize("chunk", [0.5, 1.0, 2.0])
async def test_offline_finals_equal_transcribe_of_their_span(models, window, chunk):
    model = models[window]
    engine = Engine(model)
    try:
        audio, commands = _three_utterances()
        # lockstep: every step runs, also through the silence after an utterance, as in real time
        events = await run_session(engine, audio, _opts(chunk_seconds=chunk), commands=commands, lockstep=True)
    finally:
        engine.shutdown()
    got = finals(events)
    assert [f.reason for f in got] == ["endpoint", "finalize", "close"]
    for f in got:
        assert f.token_ids == _offline_ids(model, audio, f)
    assert closed(events).segments == 3


async def test_window_option_overrides_the_checkpoint(models, engine):
    audio, commands = _three_utterances()
    events = await run_session(engine, audio, _opts(window_seconds=2), commands=commands)
    for f in finals(events):
        assert f.token_ids == _offline_ids(models[2], audio, f)


@pytest.mark.parametrize("mode,final_pass", [("exact", "offline"), ("exact", "continue"), ("cached", "continue")])
async def test_stable_text_is_a_prefix_of_every_later_partial(engine, mode, final_pass):
    audio = np.concatenate([tts(s) for s in SENTENCES[:3]])
    events = await run_session(engine, audio, _opts(chunk_seconds=0.5, encoder_mode=mode, final_pass=final_pass,
                                                    unfixed_chunks=1, rollback_tokens=3, max_new_tokens=120,
                                                    max_tokens_per_second=6.0),
                                lockstep=True)
    by_seg: dict[int, list[Partial]] = {}
    for p in partials(events):
        by_seg.setdefault(p.segment_id, []).append(p)
    assert sum(len(v) for v in by_seg.values()) >= 10
    grew = False
    for seg, ps in by_seg.items():
        assert [p.seq for p in ps] == list(range(len(ps)))
        for i, p in enumerate(ps):
            assert p.text.startswith(p.stable_text)
            for later in ps[i + 1 :]:
                assert later.stable_text.startswith(p.stable_text) and later.text.startswith(p.stable_text)
        grew = grew or len(ps[-1].stable_text) > len(ps[0].stable_text)
        if final_pass == "continue":
            final = next(f for f in finals(events) if f.segment_id == seg)
            assert final.text.startswith(ps[-1].stable_text)
    assert grew


async def test_silence_and_noise_produce_no_events_but_closed(engine):
    for audio in (silence(5.0), noise(5.0, level=0.002), noise(5.0, level=0.01, seed=1)):
        events = await run_session(engine, audio, _opts())
        assert len(events) == 1 and closed(events).segments == 0


async def test_speech_silence_speech_gives_two_finals_at_the_right_times(engine):
    a, b = tts(SENTENCES[0]), tts(SENTENCES[3])
    audio, spans = spans_of([silence(1.0), a, silence(2.0), b, silence(1.0)])
    events = await run_session(engine, audio, _opts())
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    got = finals(events)
    assert len(starts) == len(got) == 2 and [f.reason for f in got] == ["endpoint", "endpoint"]
    for f, s, (t0, t1), x in zip(got, starts, [spans[1], spans[3]], [a, b]):
        voiced = np.flatnonzero(np.abs(x) > 0.02)
        on, off = t0 + voiced[0] / SR, t0 + voiced[-1] / SR
        assert s.start == f.start and on - 0.45 <= f.start <= on  # pre-roll before the onset
        assert off <= f.end <= off + 0.35  # hangover after the last voiced frame
    assert got[0].end < got[1].start
    assert all(e.start >= got[0].end for e in partials(events) if e.segment_id == got[1].segment_id)


async def test_revisions_of_partials_by_finals_are_counted(models):
    engine = Engine(models[8])
    try:
        audio = np.concatenate([tts(SENTENCES[0]), silence(1.2), tts(SENTENCES[1])])
        for final_pass in ("offline", "continue"):
            await run_session(engine, audio, _opts(final_pass=final_pass), lockstep=True)
        stats = engine.revision_stats
    finally:
        engine.shutdown()
    assert stats["finals"] == 4 and 0 <= stats["revised"] <= 4 and 0.0 <= stats["mean_amount"] <= 1.0
    assert stats["revised"] >= 1  # random weights: an offline final never matches the streaming guess


async def test_feed_sizes_and_timing_do_not_change_the_finals(engine):
    audio = np.concatenate([tts(SENTENCES[0]), silence(1.2), tts(SENTENCES[1]), silence(1.2), tts(SENTENCES[2])])
    ref = finals(await run_session(engine, audio, _opts(), feed=1600))
    assert [f.reason for f in ref] == ["endpoint", "endpoint", "close"]
    for feed in ([1, 0, 1, 333, 0, 4097], [10 * SR]):
        assert finals(await run_session(engine, audio, _opts(), feed=feed)) == ref
    # in lockstep, steps run into the silence before each endpoint is decided: ends stay where they were
    timed = await run_session(engine, audio, _opts(), lockstep=True)
    assert any(p.audio_end > f.end for p in partials(timed) for f in finals(timed) if p.segment_id == f.segment_id)
    assert finals(timed) == ref
    quiet = await run_session(engine, audio, _opts(interim_results=False), lockstep=True)
    assert not partials(quiet) and finals(quiet) == ref  # no partials, same offline finals


@pytest.mark.parametrize("lockstep", [False, True])
async def test_long_speech_is_cut_at_max_length(engine, models, lockstep):
    audio = np.concatenate([tts(s) for s in SENTENCES] * 2)  # ~36 s without a pause
    events = await run_session(engine, audio, _opts(max_segment_seconds=8, word_timestamps=False), lockstep=lockstep)
    got = finals(events)
    for f in got:
        assert f.token_ids == _offline_ids(models[8], audio, f)
    assert [f.reason for f in got[:-1]] == ["max_length"] * (len(got) - 1) and got[-1].reason == "close"
    for a, b in zip(got, got[1:]):
        assert b.start == a.end  # contiguous: nothing lost at a cut
        assert a.end - a.start <= 8.0 and a.end - a.start >= 5.0


async def test_back_pressure_bounds_buffered_audio(models):
    engine = Engine(models[8], max_buffer_seconds=1.0)
    try:
        s = engine.open_session(_opts())
        audio = np.concatenate([tts(SENTENCES[0]), tts(SENTENCES[1])])
        most = 0
        for i in range(0, len(audio), 800):
            await s.feed(audio[i : i + 800])
            most = max(most, s._stream.backlog())
        s.close()
        events = [e async for e in s]
    finally:
        engine.shutdown()
    assert most <= 1.0 * SR + 800
    assert closed(events).segments >= 1


async def test_sessions_batched_together_equal_each_run_alone(models):
    engine = Engine(models[8])
    try:
        cases = []
        for i in range(8):
            parts = [silence(0.2 * i), tts(SENTENCES[i % 4], speed=150 + 10 * i), silence(0.8), tts(SENTENCES[(i + 1) % 4])]
            opts = _opts(final_pass="continue" if i % 2 else "offline", encoder_mode="cached" if i % 3 == 0 else "exact",
                         chunk_seconds=(0.5, 1.0, 2.0)[i % 3])
            cases.append((np.concatenate(parts), opts))
        # lockstep: no step is skipped for lack of time, so partials are comparable too
        together = await asyncio.gather(*(run_session(engine, a, o, feed=800 + 160 * i, lockstep=True)
                                          for i, (a, o) in enumerate(cases)))
        busiest = engine.busiest_batch
        alone = [await run_session(engine, a, o, lockstep=True) for a, o in cases]
    finally:
        engine.shutdown()
    assert busiest >= 4  # they really were decoded in the same passes
    for t, a in zip(together, alone):
        assert t == a


async def test_a_failing_session_is_closed_and_the_others_are_unaffected(models):
    engine = Engine(models[8])
    try:
        audio = [np.concatenate([tts(SENTENCES[i % 4]), silence(0.8), tts(SENTENCES[(i + 2) % 4])]) for i in range(8)]
        ref = [await run_session(engine, a, _opts(), lockstep=True) for a in audio]
        sessions = [engine.open_session(_opts()) for _ in audio]
        stream = sessions[3]._stream
        calls = {"n": 0}
        real = stream.finish

        def failing(job):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("injected fault")
            return real(job)

        stream.finish = failing
        got = await asyncio.gather(*(run_session(engine, a, session=s, lockstep=True) for a, s in zip(audio, sessions)))
    finally:
        engine.shutdown()
    bad = got[3]
    assert calls["n"] == 3 and len(partials(ref[3])) > 2  # it failed mid-stream, after two good steps
    assert isinstance(bad[-2], Error) and bad[-2].code == "internal_error" and closed(bad).reason == "error"
    assert "injected" not in bad[-2].message  # no internals leak to the client
    for i in (0, 1, 2, 4, 5, 6, 7):
        assert got[i] == ref[i]


SHARED = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "audio"


def _ten_minutes() -> np.ndarray:
    from asrstream.encoder.audio import load_audio
    wav = load_audio(SHARED / "119s_theres_supposed_to_be_another_broadcast.wav")  # real speech, real pauses
    return np.concatenate([wav] * 6)[: 600 * SR]


@pytest.mark.parametrize("mode,final_pass", [("exact", "offline"), ("cached", "continue")])
async def test_work_grows_linearly_over_a_ten_minute_stream(engine, mode, final_pass):
    opts = _opts(encoder_mode=mode, final_pass=final_pass, max_tokens_per_second=4.0, word_timestamps=False)
    s = engine.open_session(opts)
    events = await run_session(engine, _ten_minutes(), session=s, feed=SR, lockstep=True)
    work = s.work
    assert closed(events).segments >= 20
    audio_tokens, encoded = work["audio_tokens"], work["encoder_tokens"]
    window, chunk = 8, opts.chunk_seconds
    if mode == "exact":
        assert audio_tokens < encoded <= (1 + window / chunk) * audio_tokens
    else:
        assert encoded == audio_tokens  # each token through the encoder exactly once
    # per-pass prefill is bounded by the window / the longest segment, not by the stream's length
    prompt = sum(map(len, engine.rt.prompt("", None)))
    assert work["steps"] >= 400
    assert work["max_step_prefill"] <= prompt + 104 + 13 + opts.max_new_tokens
    assert work["max_final_prefill"] <= prompt + 30 * 13 + opts.max_new_tokens
    assert work["step_prefill_tokens"] / work["steps"] < prompt + 104 + 13 + 60


async def test_finals_carry_word_times_from_the_aligner(models, tiny_aligner_dir):
    from asrstream import load_aligner
    engine = Engine(models[8], load_aligner(str(tiny_aligner_dir), dtype="float32"))
    try:
        audio, spans = spans_of([silence(1.0), tts(SENTENCES[0]), silence(1.5), tts(SENTENCES[1])])
        got = finals(await run_session(engine, audio, _opts(language="English")))
        plain = finals(await run_session(engine, audio, _opts(language="English", word_timestamps=False)))
    finally:
        engine.shutdown()
    assert len(got) == 2 and all(f.words for f in got) and not any(f.words for f in plain)
    for f in got:
        assert " ".join(w["word"] for w in f.words).split() == [w["word"] for w in f.words]
        assert all(f.start <= w["start"] <= w["end"] <= f.end for w in f.words)  # absolute stream time
        assert [w["start"] for w in f.words] == sorted(w["start"] for w in f.words)
    assert got[1].words[0]["start"] >= got[0].end


async def test_previous_final_becomes_the_next_segments_context(engine, models):
    audio = np.concatenate([tts(SENTENCES[0]), silence(1.2), tts(SENTENCES[1])])
    with_ctx = finals(await run_session(engine, audio, _opts(previous_text_as_context=True, language="English")))
    assert len(with_ctx) == 2
    second = audio[round(with_ctx[1].start * SR) : round(with_ctx[1].end * SR)]
    expected = models[8].transcribe(second, language="English", context=with_ctx[0].text,
                                    options=DecodingOptions(max_new_tokens=NEW)).token_ids
    assert with_ctx[1].token_ids == expected


async def test_bad_input_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="unsupported language"):
        engine.open_session(_opts(language="Klingon"))
    s = engine.open_session(_opts())
    for bad, msg in ((np.array([0.1, np.nan], dtype=np.float32), "NaN"), (np.zeros((2, 100)), "mono")):
        with pytest.raises(ValueError, match=msg):
            await s.feed(bad)
    s.close()
    assert closed([e async for e in s]).segments == 0
    with pytest.raises(RuntimeError, match="closed"):
        await s.feed(np.zeros(100, dtype=np.float32))
