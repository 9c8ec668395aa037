"""Driving the web client (clients/web/) in a real headless Chromium: Debian's browser through
Playwright, a WAV file as the fake microphone, every server message the page gets recorded."""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from .speech import SR

CHROMIUM = "/usr/bin/chromium"
INSTALL = ("apt-get install -y chromium; pip install playwright==1.65.2 "
           "(never `playwright install`: the tests launch Debian's /usr/bin/chromium)")
MIC_RATE = 48000  # the fake microphone's file: the worklet resamples it to 16 kHz


def write_mic_wav(path: Path, audio: np.ndarray) -> Path:
    """16 kHz float audio as the 48 kHz 16-bit WAV that Chromium plays as its fake microphone."""
    sf.write(path, soxr.resample(audio, SR, MIC_RATE), MIC_RATE, subtype="PCM_16")
    return path


def chromium_args(mic_wav: Path) -> list[str]:
    return ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic_wav}", "--autoplay-policy=no-user-gesture-required"]


@contextlib.asynccontextmanager
async def chromium(mic_wav: Path):
    """A headless Chromium whose microphone plays `mic_wav` (in a loop). Fails, never skips, when
    the browser or Playwright is missing: CI installs them."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail(f"the web client tests need Playwright: {INSTALL}")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"the web client tests need Chromium at {CHROMIUM}: {INSTALL}")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=chromium_args(mic_wav))
        try:
            yield browser
        finally:
            await browser.close()


# Recorded in the page as it is rendered (a mutation observer's callback runs after each message's
# handler, before the next message): every state of every partial line, every status text, whether
# the speech indicator was on.
RECORDER = """
window.partialsShown = [];
window.statusShown = [];
new MutationObserver(() => {
  for (const p of document.querySelectorAll("#captions .partial")) {
    const stable = p.querySelector(".stable"), unstable = p.querySelector(".unstable");
    if (stable && unstable) window.partialsShown.push([Number(p.dataset.segmentId), stable.textContent,
      unstable.textContent, getComputedStyle(stable).opacity, getComputedStyle(unstable).opacity]);
  }
  const status = document.getElementById("status");
  const state = status && [status.dataset.state, status.textContent];
  if (state && String(state) !== String(window.statusShown.at(-1))) window.statusShown.push(state);
  if (status?.hasAttribute("data-speaking")) window.speakingShown = true;
}).observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
"""


async def open_page(browser, url: str, viewport=(1280, 720), ignore_https_errors: bool = False):
    """A new page at `url`; returns (page, messages): every JSON message the page's WebSockets got."""
    page = await browser.new_page(viewport={"width": viewport[0], "height": viewport[1]},
                                  ignore_https_errors=ignore_https_errors)
    messages: list[dict] = []

    def on_websocket(ws) -> None:
        ws.on("framereceived", lambda payload: messages.append(json.loads(payload)) if isinstance(payload, str)
              else None)

    page.on("websocket", on_websocket)
    await page.add_init_script(RECORDER)
    await page.goto(url)
    return page, messages


async def status_of(page) -> tuple[str, str]:
    """(data-state, text) of the status element."""
    return await page.eval_on_selector("#status", "el => [el.dataset.state, el.textContent]")


async def wait_for_state(page, state: str, timeout: float = 30.0) -> str:
    """Wait until #status has data-state `state`; returns its text."""
    await page.wait_for_selector(f'#status[data-state="{state}"]', timeout=timeout * 1000)
    return (await status_of(page))[1]


async def eventually(check, timeout: float = 60.0, period: float = 0.2):
    """Await `check()` until it returns something truthy; returns that, or fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {check.__name__}")
        await asyncio.sleep(period)
    return result


async def save_screenshot(page, tmp_path: Path, name: str) -> Path:
    """A PNG of the page (transparent where the page is) in tmp_path, copied to
    $ASRSTREAM_TEST_ARTIFACTS when that is set."""
    path = tmp_path / name
    await page.screenshot(path=str(path), omit_background=True)
    if artifacts := os.environ.get("ASRSTREAM_TEST_ARTIFACTS"):
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
    return path
