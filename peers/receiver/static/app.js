// The playground page: subscribe to one session over WebSocket, decode its
// Opus with WebCodecs AudioDecoder, play it through Web Audio behind a jitter
// buffer, and expose counters on window.snowmux for tests.
//
// Jitter buffer: 300 ms. The node sends a 500 ms prebuffer burst and then
// paces at 20 ms, so 300 ms absorbs network and GC hiccups (the legacy bot
// used 300-500 ms) while keeping pause and stop responsive. When playback
// catches up with the decoded audio (an underrun), a stutter is counted and
// the buffer is rebuilt to 300 ms.
import { dominantFrequency, oggPackets } from "./dsp.js";

const SAMPLE_RATE = 48000;
const JITTER_SECONDS = 0.3;
const ANALYSIS_SAMPLES = 16384;

// Player controls (PATCH through /api/session/{id}): Lavalink v4 filter presets.
const PRESETS = {
  none: {},
  nightcore: { timescale: { speed: 1.25, pitch: 1.25, rate: 1.0 } },
  bassboost: { equalizer: [0.25, 0.2, 0.15, 0.1, 0.05].map((gain, band) => ({ band, gain })) },
  "8d": { rotation: { rotationHz: 0.2 } },
};

const counters = {
  sessionId: "", socket: "connecting", state: "idle", framesDecoded: 0, samplesPlayed: 0,
  stutters: 0, decodeErrors: 0, lastEvent: null, events: [], dominantHz: 0, kbps: 0,
  position: 0, wsMessages: 0, duration: 0, preset: "none",
  levelDb: -Infinity, queue: [], currentTrack: -1, spectrumPeaks: [],
};
window.snowmux = counters;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
let audio = null;
let analyser = null;  // what is really playing: the level meter and the spectrum
let decoder = null;
let nextTime = 0;
let timestamp = 0;
let playing = false;
let socket = null;
let retry = 0;
let bytesWindow = [];
let readyPosition = 0;
let framesSinceReady = 0;
const recent = new Float32Array(ANALYSIS_SAMPLES);
let recentFill = 0;

function log(text, isError = false) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (isError) item.className = "error";
  $("log").prepend(item);
  while ($("log").children.length > 200) $("log").lastChild.remove();
}

function ensureAudio() {
  if (!audio) {
    audio = new AudioContext({ sampleRate: SAMPLE_RATE });
    analyser = audio.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0.5;
    analyser.connect(audio.destination);
  }
  if (audio.state === "suspended") audio.resume();
  return audio;
}

function newDecoder() {
  if (decoder && decoder.state !== "closed") decoder.close();
  decoder = new AudioDecoder({ output: schedule, error: (e) => {
    counters.decodeErrors += 1;
    log(`decoding error: ${e.message}`, true);
    newDecoder();
  } });
  decoder.configure({ codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 2 });
}

function schedule(data) {
  const context = ensureAudio();
  const frames = data.numberOfFrames;
  const buffer = context.createBuffer(2, frames, SAMPLE_RATE);
  const channels = Math.min(2, data.numberOfChannels);
  for (let ch = 0; ch < 2; ch++) {
    const plane = new Float32Array(frames);
    data.copyTo(plane, { planeIndex: Math.min(ch, channels - 1), format: "f32-planar" });
    buffer.copyToChannel(plane, ch);
    if (ch === 0) remember(plane);
  }
  data.close();
  counters.framesDecoded += 1;
  framesSinceReady += 1;
  const now = context.currentTime;
  if (nextTime < now + 0.005) {
    if (playing) counters.stutters += 1;
    nextTime = now + JITTER_SECONDS;
  }
  playing = true;
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(analyser);
  source.onended = () => { counters.samplesPlayed += frames; };
  source.start(nextTime);
  nextTime += frames / SAMPLE_RATE;
}

function remember(plane) {
  if (plane.length >= ANALYSIS_SAMPLES) {
    recent.set(plane.subarray(plane.length - ANALYSIS_SAMPLES));
  } else {
    recent.copyWithin(0, plane.length);
    recent.set(plane, ANALYSIS_SAMPLES - plane.length);
  }
  recentFill = Math.min(ANALYSIS_SAMPLES, recentFill + plane.length);
}

function onPacket(packet) {
  if (!decoder || decoder.state === "closed") newDecoder();
  decoder.decode(new EncodedAudioChunk({ type: "key", timestamp, duration: 20000, data: packet }));
  timestamp += 20000;
}

function onBinary(bytes) {
  bytesWindow.push([performance.now(), bytes.length]);
  const packets = oggPackets(bytes);
  if (packets === null) onPacket(bytes);
  else packets.forEach(onPacket);
}

function onEvent(event) {
  counters.lastEvent = event.reason ? `${event.type}:${event.reason}` : event.type;
  counters.events.push(event);
  if (event.type === "ready") {
    counters.state = "playing";
    readyPosition = event.position_secs || 0;
    framesSinceReady = 0;
    counters.duration = event.duration || 0;
    if (counters.duration) $("seek").max = counters.duration.toFixed(1);
    newDecoder();
    refreshQueue();
  } else if (event.type === "track_start" || event.type === "track_end") {
    if (event.type === "track_start") counters.currentTrack = event.index;
    refreshQueue();
  } else if (event.type === "seeked") {
    readyPosition = event.position_secs;  // frames after this event come from there
    framesSinceReady = 0;
  } else if (event.type === "finished") {
    counters.state = event.reason || "finished";
    playing = false;
  } else if (event.type === "error") {
    counters.state = "error";
    playing = false;
  } else if (event.type === "interrupted") {
    counters.state = "interrupted";
    playing = false;
  }
  const detail = Object.entries(event)
    .filter(([k]) => k !== "type" && k !== "session_id")
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
  log(`${event.type} ${detail}`, event.type === "error");
}

function subscribe() {
  const sessionId = $("session").value.trim();
  if (socket) { socket.onclose = null; socket.close(); }
  counters.sessionId = sessionId;
  localStorage.setItem("snowmux-session", sessionId);
  const query = new URLSearchParams({ session_id: sessionId });
  if (token) query.set("token", token);
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?${query}`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => { retry = 0; counters.socket = "subscribed"; log(`subscribed to ${sessionId}`); };
  socket.onmessage = (message) => {
    counters.wsMessages += 1;
    if (typeof message.data === "string") onEvent(JSON.parse(message.data));
    else onBinary(new Uint8Array(message.data));
  };
  socket.onclose = (close) => {
    counters.socket = "disconnected";
    if (close.code === 1006 && retry === 0) log("subscription refused or lost", true);
    const delay = Math.min(5000, 200 * 2 ** retry++);
    setTimeout(subscribe, delay);
  };
}

async function control(action) {
  ensureAudio();
  const sessionId = $("session").value.trim();
  const body = action === "play" ? JSON.stringify({ url: $("url").value, format: $("format").value }) : null;
  const headers = { "Content-Type": "application/json" };
  if (token) headers["X-Snowmux-Token"] = token;
  try {
    const response = await fetch(`/api/session/${encodeURIComponent(sessionId)}/${action}`,
      { method: "POST", headers, body });
    const reply = await response.json();
    if (!response.ok) log(`${action} refused (${response.status}): ${reply.message}`, true);
  } catch (error) {
    log(`${action} failed: ${error}`, true);
  }
}

async function update(fields) {
  const sessionId = $("session").value.trim();
  const headers = { "Content-Type": "application/json" };
  if (token) headers["X-Snowmux-Token"] = token;
  try {
    const response = await fetch(`/api/session/${encodeURIComponent(sessionId)}`,
      { method: "PATCH", headers, body: JSON.stringify(fields) });
    const reply = await response.json();
    if (!response.ok) log(`update refused (${response.status}): ${reply.message}`, true);
    return response.ok;
  } catch (error) {
    log(`update failed: ${error}`, true);
    return false;
  }
}

async function queueCall(method, path, body) {
  const sessionId = $("session").value.trim();
  const headers = { "Content-Type": "application/json" };
  if (token) headers["X-Snowmux-Token"] = token;
  const response = await fetch(`/api/session/${encodeURIComponent(sessionId)}/${path}`,
    { method, headers, body: body ? JSON.stringify(body) : null });
  const reply = await response.json();
  if (!response.ok && response.status !== 404) log(`${path} refused (${response.status}): ${reply.message}`, true);
  return response.ok ? reply : null;
}

async function enqueue() {
  ensureAudio();
  const body = { url: $("url").value, format: $("format").value,
    crossfade_ms: Number($("crossfade").value) || 0 };
  const reply = await queueCall("POST", "queue", body);
  if (reply) log(`queued ${body.url} at position ${reply.position}`);
  refreshQueue();
}

async function refreshQueue() {
  const reply = await queueCall("GET", "queue");
  if (!reply) return;
  counters.queue = reply.tracks;
  counters.currentTrack = reply.current;
  $("queue").replaceChildren(...reply.tracks.map((track) => {
    const item = document.createElement("li");
    const length = track.duration ? ` (${track.duration.toFixed(1)} s)` : "";
    item.textContent = `${track.url}${length} - ${track.state}`;
    item.className = track.state;
    return item;
  }));
}

// Level meter and spectrum of what Web Audio is playing right now (an
// AnalyserNode between the sources and the speakers), every 50 ms.
function drawVisuals() {
  if (!analyser) return;
  const time = new Float32Array(analyser.fftSize);
  analyser.getFloatTimeDomainData(time);
  let power = 0;
  for (const x of time) power += x * x;
  const db = 10 * Math.log10(power / time.length + 1e-12);
  counters.levelDb = db;
  $("level").textContent = db > -90 ? `${db.toFixed(1)} dB` : "-∞ dB";
  $("level-fill").style.width = `${Math.max(0, Math.min(100, ((db + 60) * 100) / 60))}%`;
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  const canvas = $("spectrum");
  const g = canvas.getContext("2d");
  g.fillStyle = "#0f1b2d";
  g.fillRect(0, 0, canvas.width, canvas.height);
  const maxHz = 2000;  // the tones and the bulk of music's energy
  const hzPerBin = SAMPLE_RATE / analyser.fftSize;
  const shown = Math.floor(maxHz / hzPerBin);
  for (let x = 0; x < canvas.width; x++) {
    const from = Math.floor((x * shown) / canvas.width);
    const to = Math.max(from + 1, Math.floor(((x + 1) * shown) / canvas.width));
    let best = -160;
    for (let i = from; i < to; i++) best = Math.max(best, bins[i]);
    const height = Math.max(0, ((best + 100) / 100) * canvas.height);
    g.fillStyle = best > -40 ? "#f9a825" : "#4f8fd6";
    g.fillRect(x, canvas.height - height, 1, height);
  }
  const peaks = [];
  for (let i = 2; i < shown - 1; i++) {
    if (bins[i] > -40 && bins[i] >= bins[i - 1] && bins[i] > bins[i + 1]) peaks.push(Math.round(i * hzPerBin));
  }
  counters.spectrumPeaks = peaks;
  g.fillStyle = "#c6ccd6";
  g.font = "11px sans-serif";
  for (let hz = 250; hz < maxHz; hz += 250) g.fillText(`${hz}`, (hz / maxHz) * canvas.width - 10, 12);
}

async function applyPreset(name) {
  if (await update({ filters: PRESETS[name] })) {
    counters.preset = name;
    for (const button of document.querySelectorAll("#presets button")) {
      button.classList.toggle("active", button.dataset.preset === name);
    }
    log(`filters: ${name}`);
  }
}

function refresh() {
  const now = performance.now();
  bytesWindow = bytesWindow.filter(([at]) => now - at < 2000);
  counters.kbps = bytesWindow.reduce((sum, [, n]) => sum + n, 0) * 8 / 1000 / 2;
  counters.position = readyPosition + framesSinceReady * 0.02;
  if (recentFill >= 4096) counters.dominantHz = Math.round(dominantFrequency(recent.subarray(ANALYSIS_SAMPLES - recentFill), SAMPLE_RATE));
  $("state").textContent = counters.state;
  $("position").textContent = `${counters.position.toFixed(1)} s`;
  if (document.activeElement !== $("seek")) {
    $("seek").value = counters.position.toFixed(1);
    $("seek-label").textContent = `${counters.position.toFixed(1)} s`;
  }
  $("kbps").textContent = counters.kbps.toFixed(0);
  $("stutters").textContent = counters.stutters;
  $("frames").textContent = counters.framesDecoded;
  $("dominant").textContent = counters.dominantHz ? `${counters.dominantHz} Hz` : "-";
  $("socket").textContent = counters.socket;
}

async function start() {
  const stored = params.get("session") || localStorage.getItem("snowmux-session");
  $("session").value = stored || `user-${Math.floor(Math.random() * 1e9)}`;
  try {
    const { tones } = await (await fetch("/api/tones")).json();
    for (const tone of tones) {
      const option = document.createElement("option");
      option.value = tone;
      $("tones").append(option);
    }
  } catch (error) { log(`cannot load the tone list: ${error}`, true); }
  if (typeof AudioDecoder === "undefined") {
    log("this browser has no WebCodecs AudioDecoder: audio cannot be decoded", true);
  } else {
    const support = await AudioDecoder.isConfigSupported({ codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 2 });
    if (!support.supported) log("WebCodecs cannot decode Opus here", true);
  }
  for (const action of ["play", "pause", "resume", "stop"]) {
    $(action).addEventListener("click", () => control(action));
  }
  $("session").addEventListener("change", () => { counters.state = "idle"; subscribe(); });
  $("seek").addEventListener("input", () => { $("seek-label").textContent = `${Number($("seek").value).toFixed(1)} s`; });
  $("seek").addEventListener("change", () => update({ position: Number($("seek").value) }));
  const showVolume = () => { $("volume-label").textContent = Number($("volume").value).toFixed(2); };
  $("volume").addEventListener("input", showVolume);
  $("volume").addEventListener("change", () => { showVolume(); update({ volume: Number($("volume").value) }); });
  $("enqueue").addEventListener("click", enqueue);
  $("skip").addEventListener("click", async () => { await queueCall("POST", "skip"); refreshQueue(); });
  $("clear-queue").addEventListener("click", async () => { await queueCall("DELETE", "queue"); refreshQueue(); });
  $("crossfade").addEventListener("change", () => {
    // a playing session changes now; otherwise the next "Add to queue" carries it
    if (counters.state === "playing" || counters.state === "paused") {
      update({ crossfade_ms: Number($("crossfade").value) || 0 });
    }
  });
  setInterval(drawVisuals, 50);
  for (const button of document.querySelectorAll("#presets button")) {
    button.addEventListener("click", () => applyPreset(button.dataset.preset));
  }
  subscribe();
  setInterval(refresh, 250);
}

start();
