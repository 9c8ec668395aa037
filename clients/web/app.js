// The caption overlay: microphone -> worklet (16 kHz pcm_s16le, 100 ms frames) -> WebSocket
// (protocol v1, docs/protocol.md) -> captions. Query parameters: see readOptions below.
//
// Policy:
// - Connect once the microphone runs: a session never waits on a permission prompt (the server
//   ends sessions that send no audio for 30 s).
// - Live, not complete: audio goes out only while a session is open. Frames captured while
//   disconnected, or while more than 2 s of audio wait in the socket's buffer, are dropped, so
//   the captions never fall behind the speaker.
// - Close 1000 (the stream ended) stops for good. So do errors that a retry would repeat: a bad
//   query (invalid_config), an API key (401) or Origin (403) refused, a protocol violation (1002,
//   1007, 1009); the status shows the server's message. Anything else (network, server restart
//   1001, overload 1013, internal error 1011, idle_timeout, max_duration, slow_reader) reconnects,
//   with back-off doubling from 0.5 s to 10 s, reset once a session is live.
import { Captions } from "./captions.js";

const RATE = 16000;
const MAX_BUFFERED_BYTES = 2 * RATE * 2; // 2 s of pcm_s16le
const FIRST_DELAY_S = 0.5;
const MAX_DELAY_S = 10;
const FATAL_CLOSE_CODES = new Set([1002, 1003, 1007, 1009]);

const options = readOptions(new URLSearchParams(location.search));
const status = document.getElementById("status");
const captions = new Captions(document.getElementById("captions"), options.lines);
const stats = (window.asrstreamStats = { framesSent: 0, samplesSent: 0, sampleRateIn: 0, framesDropped: 0 });
let socket = null; // the open WebSocket, or null
let attempt = 0; // reconnections since the last live session
let releaseMicrophone = () => {};

function readOptions(query) {
  const number = (name, fallback, min, max) => {
    const v = Number(query.get(name));
    return query.get(name) && Number.isFinite(v) ? Math.min(max, Math.max(min, v)) : fallback;
  };
  return {
    language: query.get("language"), // null: the server's default; "": detect
    token: query.get("token"), // the API key
    server: query.get("server"), // the ws(s):// URL of /v1/asr; default: this page's host
    font: query.get("font"), // a font family
    size: number("size", null, 8, 400), // px
    color: query.get("color"), // text color (CSS; hex may omit the #)
    bg: query.get("bg"), // caption box background (CSS color)
    lines: Math.round(number("lines", 3, 1, 50)),
    position: query.get("position") === "top" ? "top" : "bottom",
  };
}

function applyStyle({ font, size, color, bg, lines, position }) {
  const root = document.documentElement.style;
  if (font) root.setProperty("--font", `"${font.replace(/["\\]/g, "")}", system-ui, sans-serif`);
  if (size) root.setProperty("--size", `${size}px`);
  for (const [name, value] of [["--color", color], ["--bg", bg]]) {
    const css = /^([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(value ?? "") ? `#${value}` : value;
    if (css && CSS.supports("color", css)) root.setProperty(name, css);
    else if (css) console.warn(`asrstream: ignoring ${name.slice(2)}=${value}: not a CSS color`);
  }
  root.setProperty("--lines", lines);
  document.body.dataset.position = position;
}

function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

function endpoint({ server, language, token }) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(server || `${scheme}//${location.host}/v1/asr`);
  if (url.pathname === "/") url.pathname = "/v1/asr";
  url.searchParams.set("sample_rate", RATE);
  url.searchParams.set("encoding", "pcm_s16le");
  if (language !== null) url.searchParams.set("language", language);
  if (token) url.searchParams.set("token", token);
  return url.href;
}

// -- the WebSocket session ------------------------------------------------------------------------
function connect(url) {
  if (attempt) setStatus("reconnecting", `reconnecting (attempt ${attempt})…`);
  else setStatus("connecting", "connecting…");
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const session = { opened: false, error: null, speaking: -1 };
  ws.onopen = () => {
    session.opened = true;
    socket = ws;
  };
  ws.onmessage = (event) => receive(JSON.parse(event.data), session);
  ws.onclose = (event) => {
    socket = null;
    delete status.dataset.speaking;
    closed(url, event, session);
  };
}

function receive(msg, session) {
  switch (msg.type) {
    case "session.created":
      attempt = 0;
      captions.newSession();
      setStatus("live", "live");
      break;
    case "speech.started":
      session.speaking = msg.segment_id;
      status.dataset.speaking = "";
      break;
    case "transcript.partial":
      captions.partial(msg);
      break;
    case "transcript.final":
      captions.final(msg);
      if (msg.segment_id >= session.speaking) delete status.dataset.speaking;
      break;
    case "error":
      session.error = msg; // the close that follows decides (fatal ones end the session)
      console.warn(`asrstream: ${msg.code}: ${msg.message}`);
      break;
  }
}

async function closed(url, event, session) {
  if (event.code === 1000) return stop("stopped", "stopped");
  if (session.error?.code === "invalid_config" || FATAL_CLOSE_CODES.has(event.code)) {
    return stop("error", session.error?.message || event.reason || `closed with code ${event.code}`);
  }
  const refused = session.opened ? null : await refusal(url);
  if (refused?.fatal) return stop("error", refused.text);
  attempt += 1;
  const delay = Math.min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (attempt - 1));
  const error = session.error?.code === event.reason ? session.error.message : event.reason;
  const why = refused?.text || error;
  setStatus("reconnecting", `reconnecting in ${delay} s (attempt ${attempt})${why ? `: ${why}` : ""}`);
  setTimeout(() => connect(url), delay * 1000);
}

// A refused upgrade reaches the page as a bare close 1006. The same URL over plain HTTP tells why
// (401 key, 403 Origin: fatal; 503 busy or loading: retry), when it is this page's origin (the
// server sends no CORS headers). Null when it cannot tell.
async function refusal(url) {
  const http = new URL(url);
  http.protocol = http.protocol === "wss:" ? "https:" : "http:";
  if (http.origin !== location.origin) return null;
  try {
    const response = await fetch(http, { cache: "no-store" });
    if (![401, 403, 503].includes(response.status)) return null;
    const text = `refused (${response.status}): ${(await response.text()).trim()}`;
    return { fatal: response.status !== 503, text };
  } catch {
    return null; // the server is down: retry
  }
}

function stop(state, text) {
  setStatus(state, text);
  releaseMicrophone();
}

// -- the microphone -------------------------------------------------------------------------------
function send(frame) {
  if (!socket || socket.readyState !== WebSocket.OPEN || socket.bufferedAmount > MAX_BUFFERED_BYTES) {
    stats.framesDropped += 1;
    return;
  }
  socket.send(frame);
  stats.framesSent += 1;
  stats.samplesSent += frame.byteLength / 2;
}

// The context runs at the device's rate; the worklet resamples (browsers differ in whether and how
// well they would). Browser voice processing (echo cancellation, noise suppression, gain control)
// is made for calls and distorts speech for a recognizer: off.
async function startMicrophone() {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    throw new Error("needs a secure page: https, or http://localhost");
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext();
  await context.audioWorklet.addModule(new URL("worklet.js", import.meta.url));
  const node = new AudioWorkletNode(context, "asrstream-capture", {
    numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: "explicit",
  });
  node.port.onmessage = (event) => send(event.data);
  context.createMediaStreamSource(stream).connect(node);
  stats.sampleRateIn = context.sampleRate;
  releaseMicrophone = () => {
    context.close();
    for (const track of stream.getTracks()) track.stop();
  };
  return context;
}

// Without a user gesture a browser may keep audio suspended (OBS and kiosk setups allow it): resume()
// stays pending until it may start. Ask for a click when that takes over a second.
async function whenAudioRuns(context) {
  const running = context.resume();
  const blocked = setTimeout(() => {
    setStatus("blocked", "click the page to start audio");
    document.addEventListener("pointerdown", () => context.resume(), { once: true });
  }, 1000);
  await running;
  clearTimeout(blocked);
}

async function main() {
  applyStyle(options);
  let url;
  try {
    url = endpoint(options);
  } catch {
    return setStatus("error", `server: not a ws:// or wss:// URL: ${options.server}`);
  }
  try {
    await whenAudioRuns(await startMicrophone());
  } catch (e) {
    return setStatus("error", `microphone: ${e.message}`);
  }
  connect(url);
}

main();
