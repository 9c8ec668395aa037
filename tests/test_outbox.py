"""The outbox and the connection config: pure policies of the server, tested alone."""
from __future__ import annotations

import pytest

from asrstream.protocol.config import SessionConfig, query_values
from asrstream.protocol.messages import ProtocolError, SpeechStarted, TranscriptFinal, TranscriptPartial
from asrstream.protocol.outbox import Outbox
from asrstream.streaming.options import StreamOptions


def _partial(seg: int, seq: int) -> TranscriptPartial:
    return TranscriptPartial(seg, seq, "a", "b", 0.0, 1.0, "English")


async def test_unsent_partial_is_replaced_by_the_newer_one_finals_kept():
    box = Outbox(limit=10)
    for msg in [_partial(0, 0), _partial(0, 1), _partial(0, 2), TranscriptFinal(0, "x", "English", 0, 1, "endpoint"),
                SpeechStarted(1, 2.0), _partial(1, 0), _partial(1, 1)]:
        assert box.put(msg)
    got = [await box.get() for _ in range(len(box.items))]
    assert [(m.type, getattr(m, "seq", None)) for m in got] == [
        ("transcript.partial", 2), ("transcript.final", None), ("speech.started", None), ("transcript.partial", 1)]
    assert box.coalesced == 3


async def test_outbox_reports_a_reader_that_stopped_reading():
    box = Outbox(limit=3)
    assert all(box.put(TranscriptFinal(i, "x", "English", 0, 1, "endpoint")) for i in range(3))
    assert not box.put(TranscriptFinal(3, "x", "English", 0, 1, "endpoint"))
    assert len(box.items) == 4  # nothing dropped: the connection decides


def test_config_maps_protocol_names_and_keeps_old_on_error():
    cfg = SessionConfig(StreamOptions())
    new = cfg.apply({"vad": {"silence_ms": 900, "max_segment_s": 12, "aggressiveness": 3}, "sample_rate": 8000,
                     "language": "English", "interim_results": False})
    o = new.options
    assert (o.silence_ms, o.max_segment_seconds, o.vad_aggressiveness, o.language, o.interim_results) == (
        900, 12, 3, "English", False)
    assert new.sample_rate == 8000 and cfg.options == StreamOptions()
    assert new.to_dict()["vad"] == {"silence_ms": 900, "max_segment_s": 12, "aggressiveness": 3}
    with pytest.raises(ProtocolError, match=r"^vad\.silence_ms must be in") as e:
        new.apply({"vad": {"silence_ms": 1}})
    assert e.value.code == "invalid_field"


def test_word_timestamps_need_an_aligner():
    cfg = SessionConfig(StreamOptions(), can_align=False)
    assert cfg.to_dict()["word_timestamps"] is False
    with pytest.raises(ProtocolError, match="aligner"):
        cfg.apply({"word_timestamps": True})


@pytest.mark.parametrize("query,ok", [
    ({"language": ["english"], "sample_rate": ["8000"], "encoding": ["pcm_f32le"], "token": ["t"]},
     {"language": "english", "sample_rate": 8000, "encoding": "pcm_f32le"}),
    ({"language": [""]}, {"language": None}),
    ({"sample_rate": ["7999"]}, None), ({"sample_rate": ["16k"]}, None), ({"encoding": ["opus"]}, None),
    ({"lang": ["en"]}, None),
])
def test_query_values(query, ok):
    if ok is None:
        with pytest.raises(ProtocolError) as e:
            query_values(query)
        assert e.value.code == "invalid_config"
    else:
        assert query_values(query) == ok
