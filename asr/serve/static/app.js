// The page of `asr serve`: microphone -> AudioWorklet -> WebSocket /v1/stream (f32le at the
// AudioContext's rate; the server resamples), partial and final text as they come; a file box
// that posts to /v1/transcribe. URLs are relative, so the page also works behind a path prefix.
"use strict";

const $ = (id) => document.getElementById(id);
const BLOCK_SECONDS = 0.1;   // audio per WebSocket message
const PENDING_SECONDS = 5;    // audio kept while the WebSocket opens
const POLL_MS = 5000;        // how often the page checks that the server is there

let apiKeyRequired = false;
let session = null;          // the running microphone stream

function showMessage(id, text) {
  const el = $(id);
  el.textContent = text || "";
  el.classList.toggle("shown", Boolean(text));
}
const showError = (text) => showMessage("error", text);
const setStatus = (text) => { $("status").textContent = text; };

function apiKey() { return $("key").value.trim(); }
function authHeaders() { return apiKeyRequired && apiKey() ? { Authorization: "Bearer " + apiKey() } : {}; }

function serverGone(detail) {
  showMessage("offline", "The server does not answer at " + location.origin + " (" + detail + "). " +
              "Is `asr serve` still running? The page retries every " + POLL_MS / 1000 + " s.");
}

async function checkServer() {
  try {
    const r = await fetch("healthz", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const h = await r.json();
    showMessage("offline", "");
    apiKeyRequired = h.api_key_required;
    $("keyrow").classList.toggle("shown", apiKeyRequired);
    $("server").textContent = "model " + h.model + " (" + h.sample_rate + " Hz); streams " +
      h.streams.live + "/" + h.streams.max;
    return true;
  } catch (e) {
    serverGone(e.message || String(e));
    $("server").textContent = "server not reachable";
    return false;
  }
}

function micMessage(e) {
  switch (e.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access was refused. Allow the microphone for this page (the icon at the left of " +
             "the address bar, or the browser's site settings) and press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found. Plug one in (or pick one in the system settings) and press Start again.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone could not be opened: another program may be using it (" + e.message + ").";
    default:
      return "The microphone could not be started: " + e.name + ": " + e.message;
  }
}

function fmtTime(s) { return s.toFixed(2).padStart(6, " "); }

function addFinal(ev) {
  const p = document.createElement("p");
  const t = document.createElement("span");
  t.className = "t";
  t.textContent = fmtTime(ev.start) + "–" + fmtTime(ev.end);
  const text = document.createElement("span");
  text.className = "final";
  text.textContent = ev.text;
  p.append(t, text);
  $("finals").append(p);
  $("partial").textContent = "";
}

function streamUrl() {
  const u = new URL("v1/stream", location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (apiKeyRequired && apiKey()) u.searchParams.set("api_key", apiKey());
  return u.toString();
}

function stopAudio(s) {
  if (s.media) s.media.getTracks().forEach((t) => t.stop());
  if (s.ctx && s.ctx.state !== "closed") s.ctx.close();
  s.media = null;
}

function finishSession(s) {
  stopAudio(s);
  if (session === s) session = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

async function start() {
  showError("");
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("The browser gives the microphone only to pages opened over https:// or from localhost; this " +
              "page is " + location.origin + ". Open it as http://localhost:PORT (an SSH tunnel works) or " +
              "behind an https proxy.");
    return;
  }
  if (!(await checkServer())) return;
  $("start").disabled = true;
  setStatus("asking for the microphone…");
  const s = { media: null, ctx: null, ws: null, opened: false, stopping: false, ended: false };
  session = s;
  try {
    s.media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    showError(micMessage(e));
    setStatus("idle");
    finishSession(s);
    return;
  }
  let node;
  try {
    s.ctx = new AudioContext();
    await s.ctx.audioWorklet.addModule("static/capture-worklet.js");
    const source = s.ctx.createMediaStreamSource(s.media);
    node = new AudioWorkletNode(s.ctx, "asr-capture",
      { processorOptions: { blockSize: Math.round(s.ctx.sampleRate * BLOCK_SECONDS) } });
    const mute = s.ctx.createGain();
    mute.gain.value = 0;   // the worklet must be pulled by the graph; nothing is played back
    source.connect(node).connect(mute).connect(s.ctx.destination);
  } catch (e) {
    showError("The browser could not start audio capture (" + e.name + ": " + e.message + "); a current " +
              "Chrome, Firefox or Safari is needed (AudioWorklet).");
    setStatus("idle");
    finishSession(s);
    return;
  }

  s.ws = new WebSocket(streamUrl());
  s.ws.binaryType = "arraybuffer";
  setStatus("connecting…");
  // audio captured while the WebSocket opens is kept (up to PENDING_SECONDS) and sent once it is open,
  // so that words spoken right after Start are not lost
  const pending = [];   // blocks of BLOCK_SECONDS each (the worklet posts only full blocks)
  s.ws.onopen = () => {
    s.opened = true;
    s.ws.send(JSON.stringify({ sample_rate: s.ctx.sampleRate, format: "f32le" }));
    for (const block of pending.splice(0)) s.ws.send(block);
  };
  node.port.onmessage = (e) => {
    if (s.stopping) return;
    if (s.opened && s.ws.readyState === WebSocket.OPEN) s.ws.send(e.data);
    else if (!s.opened) {
      pending.push(e.data);
      if (pending.length > PENDING_SECONDS / BLOCK_SECONDS) pending.shift();
    }
  };
  s.ws.onmessage = (e) => {
    const ev = JSON.parse(e.data);
    if (ev.type === "ready") { setStatus("listening (" + s.ctx.sampleRate + " Hz)"); $("stop").disabled = false; checkServer(); }
    else if (ev.type === "partial") $("partial").textContent = ev.text;
    else if (ev.type === "final") { if (ev.text) addFinal(ev); }
    else if (ev.type === "end") { s.ended = true; setStatus("stopped (" + ev.audio_seconds.toFixed(1) + " s of audio)"); }
    else if (ev.type === "error") showError("The server stopped the stream: " + ev.message);
  };
  s.ws.onclose = (e) => {
    finishSession(s);
    if (!s.opened) {
      setStatus("idle");
      serverGone("the WebSocket " + streamUrl().split("?")[0] + " did not open");
      checkServer();
    } else if (e.code === 1006) {
      setStatus("disconnected");
      showError("Lost the connection to the server (it stopped, or the network dropped). " +
                "Press Start to try again once it is back.");
      checkServer();
    } else if (e.code !== 1000) {
      setStatus("closed (" + e.code + ")");
      if (!$("error").textContent) showError("The server closed the stream (code " + e.code + "): " + e.reason);
    } else if (!s.ended) {
      setStatus("stopped");
    }
  };
}

function stop() {
  const s = session;
  if (!s) return;
  s.stopping = true;
  $("stop").disabled = true;
  setStatus("finishing…");
  stopAudio(s);
  if (s.ws && s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify({ type: "end" }));
}

async function upload() {
  showError("");
  const f = $("file").files[0];
  if (!f) { showError("Choose an audio file first."); return; }
  $("upload-text").textContent = "transcribing " + f.name + "…";
  $("upload-segments").textContent = "";
  const form = new FormData();
  form.append("file", f, f.name);
  let r;
  try {
    r = await fetch("v1/transcribe", { method: "POST", body: form, headers: authHeaders() });
  } catch (e) {
    $("upload-text").textContent = "";
    serverGone(e.message || String(e));
    return;
  }
  const body = await r.json().catch(() => null);
  if (!r.ok) {
    $("upload-text").textContent = "";
    showError("The server refused " + f.name + " (HTTP " + r.status + "): " +
              (body && body.error ? body.error.message : r.statusText));
    return;
  }
  $("upload-text").textContent = body.text || "(no speech found)";
  $("upload-segments").textContent = body.segments.map(
    (s) => "[" + s.start.toFixed(2) + "–" + s.end.toFixed(2) + "] " + s.text).join("  ");
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
$("upload").addEventListener("click", upload);
checkServer();
setInterval(checkServer, POLL_MS);
