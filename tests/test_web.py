"""The web client (clients/web/) in a real headless Chromium against a real server: a 48 kHz WAV as
the microphone, the page's resampler, socket, captions and status; the resampler alone under Node."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from asrstream import load_model
from asrstream.protocol.server import WEB_ROOT
from asrstream.streaming.engine import Engine

from .browser import chromium, eventually, open_page, save_screenshot, status_of, wait_for_state, write_mic_wav
from .servers import of, running, self_signed_cert
from .speech import SENTENCES, silence, spans_of, tts

LINES = 4


@pytest.fixture(scope="module")
def engine(tiny_asr_dir):
    e = Engine(load_model(str(tiny_asr_dir), dtype="float32"))
    yield e
    e.shutdown()


@pytest.fixture(scope="module")
def mic_wav(tmp_path_factory):
    """Three sentences with pauses long enough to end a segment each (about 13 s, played in a loop)."""
    parts = [silence(0.5)]
    for text in SENTENCES[:3]:
        parts += [tts(text), silence(1.2)]
    return write_mic_wav(tmp_path_factory.mktemp("mic") / "speech48k.wav", spans_of(parts)[0])


async def test_page_goes_live_and_streams_16khz(engine, mic_wav):
    """The page connects, the session is at 16 kHz, and audio goes out at 16000 samples/s (±10 %),
    resampled in the worklet from the device's rate (headless Chromium: 44.1 kHz, playing the 48 kHz
    file); the page itself is transparent."""
    async with running(engine) as server, chromium(mic_wav) as browser:
        page, msgs = await open_page(browser, f"http://127.0.0.1:{server.port}/?lines={LINES}")
        await wait_for_state(page, "live")
        assert msgs[0]["type"] == "session.created" and msgs[0]["config"]["sample_rate"] == 16000
        read = "[performance.now() / 1000, window.asrstreamStats.samplesSent, window.asrstreamStats.sampleRateIn]"
        t0, n0, rate_in = await page.evaluate(read)
        await page.wait_for_timeout(6000)
        t1, n1, _ = await page.evaluate(read)
        assert rate_in > 16000, "the worklet was meant to resample from the device's rate"
        assert abs((n1 - n0) / (t1 - t0) - 16000) < 1600
        assert await page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"


async def test_captions_show_finals_and_partials(engine, mic_wav, tmp_path):
    """The displayed finals are the last ones received, by segment id and text; each partial was
    shown with its stable text solid and its unstable tail faded; speech.started showed."""
    async with running(engine) as server, chromium(mic_wav) as browser:
        page, msgs = await open_page(browser, f"http://127.0.0.1:{server.port}/?lines={LINES}")

        async def two_finals():
            return len(of(msgs, "transcript.final")) >= 2

        async def shown_finals_match():
            shown = await page.eval_on_selector_all(
                ".final", "els => els.map(e => [Number(e.dataset.segmentId), e.textContent])")
            got = [[m["segment_id"], m["text"]] for m in of(msgs, "transcript.final")]
            partial = await page.locator(".partial").count()
            return shown and shown == got[-len(shown):] and len(shown) >= min(len(got), LINES - partial)

        async def partials_shown():
            shown = await page.evaluate("window.partialsShown")
            finals = {m["segment_id"] for m in of(msgs, "transcript.final")}
            sent = [(p["segment_id"], p["stable_text"], p["unstable_text"]) for p in of(msgs, "transcript.partial")
                    if p["segment_id"] in finals and p["text"]]  # those before a final: rendered for sure
            return sent and set(sent) <= {tuple(s[:3]) for s in shown} and shown

        await eventually(two_finals, timeout=90)
        await eventually(shown_finals_match, timeout=10)
        shown = await eventually(partials_shown, timeout=10)
        assert all(float(s[3]) == 1 and float(s[4]) < 1 for s in shown)  # stable solid, unstable faded
        assert await page.evaluate("window.speakingShown")  # speech.started lit the indicator
        assert len(await page.query_selector_all("#captions > *")) <= LINES
        await save_screenshot(page, tmp_path, "web-captions.png")


async def test_refused_config_shows_the_servers_message(engine, mic_wav):
    """An unknown language: the server answers error invalid_config and closes 1008; the status
    shows its message and the page does not reconnect."""
    async with running(engine) as server, chromium(mic_wav) as browser:
        page, msgs = await open_page(browser, f"http://127.0.0.1:{server.port}/?language=Klingon")
        text = await wait_for_state(page, "error")
        errors = of(msgs, "error")
        assert errors and errors[0]["code"] == "invalid_config" and errors[0]["message"] in text
        await page.wait_for_timeout(1500)
        assert (await status_of(page))[0] == "error" and not of(msgs, "session.created")


async def test_api_key_in_token_parameter(engine, mic_wav):
    """With an API key set, ?token=KEY goes live; a wrong token stops with the server's 401 text."""
    async with running(engine, api_key="k") as server, chromium(mic_wav) as browser:
        page, _ = await open_page(browser, f"http://127.0.0.1:{server.port}/?token=k")
        await wait_for_state(page, "live")
        page, msgs = await open_page(browser, f"http://127.0.0.1:{server.port}/?token=wrong")
        text = await wait_for_state(page, "error")
        assert "401" in text and "API key" in text and not msgs


async def test_page_over_https_streams_over_wss(engine, mic_wav, tmp_path):
    """Served over https (--certfile), the page opens wss:// on the same host and goes live."""
    cert, _ = self_signed_cert(tmp_path)
    async with running(engine, certfile=str(cert)) as server, chromium(mic_wav) as browser:
        page, msgs = await open_page(browser, f"https://127.0.0.1:{server.port}/", ignore_https_errors=True)
        await wait_for_state(page, "live")
        assert await page.evaluate("window.isSecureContext") and msgs[0]["type"] == "session.created"
        await eventually(lambda: page.evaluate("window.asrstreamStats.framesSent"))


async def test_reconnects_with_backoff_when_the_server_goes_away(engine, mic_wav):
    """The server closes (1001) and comes back on the same port: the status counts the attempts,
    waiting 0.5 s then 1 s, and the page goes live again on its own."""
    async with chromium(mic_wav) as browser:
        async with running(engine) as server:
            port = server.port
            page, msgs = await open_page(browser, f"http://127.0.0.1:{port}/")
            await wait_for_state(page, "live")
        await page.wait_for_timeout(2000)  # attempts 1 and 2 fail: nothing listens
        async with running(engine, port=port):
            await wait_for_state(page, "live", timeout=30)
        shown = [text for _, text in await page.evaluate("window.statusShown") if text.startswith("reconnecting in")]
        assert shown[:2] == ["reconnecting in 0.5 s (attempt 1)", "reconnecting in 1 s (attempt 2)"], shown
        assert len(of(msgs, "session.created")) == 2


async def test_query_parameters_style_the_overlay(engine, mic_wav):
    """font, size, color (hex without #), bg, lines and position=top reach the caption box."""
    query = "font=DejaVu%20Serif&size=40&color=ffcc00&bg=rgba(0,0,255,0.5)&lines=2&position=top"
    async with running(engine) as server, chromium(mic_wav) as browser:
        page, _ = await open_page(browser, f"http://127.0.0.1:{server.port}/?{query}")
        await wait_for_state(page, "live")
        style = await page.eval_on_selector("#captions", """el => { const s = getComputedStyle(el);
            return [s.fontFamily, s.fontSize, s.color, s.backgroundColor, s.maxHeight,
                    document.body.dataset.position]; }""")
    assert style == ['"DejaVu Serif", system-ui, sans-serif', "40px", "rgb(255, 204, 0)", "rgba(0, 0, 255, 0.5)",
                     f"{2 * 1.3 * 40:g}px", "top"]


# -- the resampler alone, under Node ----------------------------------------------------------------
RESAMPLE_CHECK = """
import { Resampler } from "./resample.mjs";
const [rate, hz, seconds] = process.argv.slice(2).map(Number);
const r = new Resampler(rate), out = [];
const x = Float32Array.from({ length: rate * seconds }, (_, i) => Math.sin(2 * Math.PI * hz * i / rate));
for (let i = 0; i < x.length; i += 128) out.push(...r.process(x.subarray(i, i + 128)));
const tail = out.slice(1600);  // past the filter's start
const rms = Math.sqrt(tail.reduce((s, v) => s + v * v, 0) / tail.length);
console.log(JSON.stringify({ samples: out.length, gain_db: 20 * Math.log10(rms / Math.SQRT1_2) }));
"""


@pytest.mark.parametrize("rate", [44100, 48000])
def test_resampler_keeps_speech_band_and_rejects_aliases(tmp_path, rate):
    """To 16 kHz in 128-sample blocks: 16000 samples per second; a 1 kHz tone passes within 1 dB;
    a 10 kHz tone (it would alias to 6 kHz) is attenuated by more than 20 dB."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("the resampler test needs Node.js (apt-get install -y nodejs)")
    shutil.copy(WEB_ROOT / "resample.js", tmp_path / "resample.mjs")  # an ES module for Node
    (tmp_path / "check.mjs").write_text(RESAMPLE_CHECK)

    def run(hz: int) -> dict:
        out = subprocess.run([node, "check.mjs", str(rate), str(hz), "2"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, check=True)
        return json.loads(out.stdout)

    passed, rejected = run(1000), run(10000)
    assert abs(passed["samples"] - 2 * 16000) <= 1
    assert abs(passed["gain_db"]) < 1 and rejected["gain_db"] < -20
