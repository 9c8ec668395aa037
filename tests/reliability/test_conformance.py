"""WebSocket conformance at the frame level, in the spirit of the Autobahn suite, against the server's
real settings: framing, reserved bits and opcodes, fragmentation, UTF-8 validity, ping/pong and the
close handshake (RFC 6455). Each case sends raw frames on a raw TCP socket after the handshake and
checks what the server does: the close code it sends, or a normal session (pong where pinged,
`done` after close_stream, close 1000). The outcome of every case is printed."""
from __future__ import annotations

import asyncio
import base64
import os
import struct



from ..servers import running

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
OK = "ok"  # the session goes on to `done` and close 1000


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    size = bytes([n]) if n < 126 else (bytes([126]) + struct.pack(">H", n) if n < 65536 else
                                       bytes([127]) + struct.pack(">Q", n))
    if not masked:
        return head + size + payload
    key = os.urandom(4)
    size = bytes([size[0] | 0x80]) + size[1:]
    return head + size + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close(code: int, reason: bytes = b"") -> bytes:
    return frame(CLOSE, struct.pack(">H", code) + reason)


KEEPALIVE = b'{"type":"keepalive"}'
CASES = [
    ("fragmented text message", [frame(TEXT, KEEPALIVE[:5], fin=False), frame(CONT, KEEPALIVE[5:12], fin=False),
                                 frame(CONT, KEEPALIVE[12:])], OK),
    ("fragmented binary audio", [frame(BINARY, b"\x00" * 3001, fin=False), frame(CONT, b"\x00" * 3001)], OK),
    ("ping inside a fragmented message", [frame(TEXT, KEEPALIVE[:5], fin=False), frame(PING, b"hi"),
                                          frame(CONT, KEEPALIVE[5:])], OK),
    ("ping with payload gets a pong", [frame(PING, b"payload-123")], OK),
    ("empty ping", [frame(PING)], OK),
    ("unsolicited pong is ignored", [frame(PONG, b"x")], OK),
    ("empty text and binary frames", [frame(BINARY), frame(TEXT, b'{"type":"keepalive"}')], OK),
    ("unmasked client frame", [frame(BINARY, b"\x00\x00", masked=False)], 1002),
    ("RSV1 without an extension", [frame(BINARY, b"\x00\x00", rsv=4)], 1002),
    ("RSV2 set", [frame(BINARY, b"\x00\x00", rsv=2)], 1002),
    ("RSV3 set", [frame(BINARY, b"\x00\x00", rsv=1)], 1002),
    *[(f"reserved data opcode {op}", [frame(op, b"x")], 1002) for op in (3, 4, 5, 6, 7)],
    *[(f"reserved control opcode {op}", [frame(op, b"x")], 1002) for op in (11, 12, 13, 14, 15)],
    ("continuation without a start", [frame(CONT, b"xx")], 1002),
    ("new message inside a fragmented one", [frame(TEXT, b"{", fin=False), frame(TEXT, b"}")], 1002),
    ("fragmented ping", [frame(PING, b"x", fin=False)], 1002),
    ("ping payload over 125 bytes", [frame(PING, b"x" * 126)], 1002),
    ("invalid UTF-8 text", [frame(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")], 1007),
    ("invalid UTF-8 across fragments", [frame(TEXT, b"\xce", fin=False), frame(CONT, b"\xff")], 1007),
    ("close 1000 is echoed", [close(1000)], 1000),
    ("close 1001 is echoed", [close(1001, b"bye")], 1001),
    ("close 3000 (registered range)", [close(3000)], 3000),
    ("close 4999 (private range)", [close(4999)], 4999),
    *[(f"close with invalid code {c}", [close(c)], 1002) for c in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000)],
    ("close with a 1-byte payload", [frame(CLOSE, b"\x03")], 1002),
    ("close reason not UTF-8", [close(1000, b"\xff\xfe")], 1007),
    ("empty close", [frame(CLOSE)], 1005),  # no status: the server answers with an empty close
    ("frame over the size limit", [frame(BINARY, b"\x00" * ((1 << 20) + 1))], 1009),
]


async def handshake(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /v1/asr HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def read_frames(reader: asyncio.StreamReader, until_close: bool = True) -> list[tuple[int, bytes]]:
    """Server frames until its close frame (or EOF)."""
    out = []
    while True:
        try:
            b0, b1 = await reader.readexactly(2)
        except asyncio.IncompleteReadError:
            return out
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", await reader.readexactly(8))[0]
        out.append((b0 & 0x0F, await reader.readexactly(n)))
        if out[-1][0] == CLOSE:
            return out


async def run_case(port: int, frames: list[bytes], expect) -> tuple[str, bool]:
    reader, writer = await handshake(port)
    try:
        for f in frames:
            writer.write(f)
        if expect == OK:
            writer.write(frame(TEXT, b'{"type":"close_stream"}'))
        await writer.drain()
        got = await asyncio.wait_for(read_frames(reader), 30)
    except (ConnectionError, asyncio.TimeoutError) as e:
        return f"no close frame ({type(e).__name__})", False
    finally:
        writer.close()
    closes = [p for op, p in got if op == CLOSE]
    code = struct.unpack(">H", closes[0][:2])[0] if closes and len(closes[0]) >= 2 else (1005 if closes else None)
    pings = [p for f in frames if f[0] & 0x0F == PING and f[0] & 0x80 for p in [_payload(f)]]
    pongs = [p for op, p in got if op == PONG]
    if expect == OK:
        done = any(op == TEXT and b'"type":"done"' in p for op, p in got)
        errors = [p for op, p in got if op == TEXT and b'"type":"error"' in p]
        ok = code == 1000 and done and not errors and pongs == pings
        return f"close {code}, done {done}, errors {len(errors)}, pongs {len(pongs)}/{len(pings)}", ok
    return f"close {code}", code == expect


def _payload(masked_frame: bytes) -> bytes:
    n = masked_frame[1] & 0x7F
    key, data = masked_frame[2:6], masked_frame[6 : 6 + n]
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


async def test_websocket_conformance(engine):
    async with running(engine) as server:
        results = [(name, *(await run_case(server.port, frames, expect)), expect) for name, frames, expect in CASES]
        assert engine.sessions == 0 or await _settled(engine)
    report = "\n".join(f"{'ok ' if ok else 'BAD'} {name}: {got} (want {want})" for name, got, ok, want in results)
    print(report)
    assert all(ok for _, _, ok, _ in results), report


async def _settled(engine) -> bool:
    for _ in range(200):
        if engine.sessions == 0:
            return True
        await asyncio.sleep(0.01)
    return False
