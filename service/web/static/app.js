/* The unmask page: files -> POST /v1/jobs (explain=true), one job each -> the tab's job list, kept
 * up to date from GET /v1/jobs -> the chosen job's record drawn. Cancel asks POST /v1/jobs/{id}/cancel
 * (the job ends cancelled, as the page then says). The model line reads GET /model.
 *
 * Plain browser JavaScript, no framework and no build step. The frames are drawn from the
 * user's own file: an <img> for images, the browser's <video> seeked to each sampled frame for
 * videos (the server sends scores and boxes, never pixels). All text from the server or the
 * file name is set with textContent, never as HTML.
 */
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "unmask.apiKey";
const JOBS_STORAGE = "unmask.jobs"; // this tab's job ids and names: the list survives a reload of the tab
const POLL_MS = 500;
const FINAL = ["done", "failed", "cancelled", "rejected", "gone"]; // rejected: the upload was refused; gone: deleted on the server
const SVG = "http://www.w3.org/2000/svg";
const TRACK_COLORS = ["#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

/* jobs: this tab's entries, newest first; shown: the entry in the result view; view: bumped when it changes,
 * so drawing still under way for an earlier view stops. */
const page = { jobs: [], shown: null, view: 0, drawn: null, url: null, result: null, source: null, fps: null,
  queue: Promise.resolve(), current: -1, polling: false, model: null, stripObserver: null };

/* -- colours, the same as the CLI's pictures (cli/evidence.py) ---------------------------- */

/** [r, g, b] for a score: green (0, real) through yellow to red (1, fake). */
function colorFor(score) {
  const h = ((1 - score) / 3) * 6, s = 0.85, v = 0.9;
  const i = Math.floor(h) % 6, f = h - Math.floor(h);
  const p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const rgb = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i];
  return rgb.map((c) => Math.round(c * 255));
}

const rgbText = (rgb) => `rgb(${rgb.join(",")})`;
const BAND_COLORS = { fake: "#c62828", real: "#2e7d32", uncertain: "#b26a00" }; // as style.css's .label colours

/** The JET colours of a heat-map value in [0, 1] (blue low, red high), as OpenCV's COLORMAP_JET. */
function jet(v) {
  const clamp = (x) => Math.max(0, Math.min(1, x));
  return [clamp(1.5 - Math.abs(4 * v - 3)), clamp(1.5 - Math.abs(4 * v - 2)), clamp(1.5 - Math.abs(4 * v - 1))].map((c) => Math.round(c * 255));
}

/* -- talking to the API ------------------------------------------------------------------ */

class Cancelled extends Error {}

class ApiError extends Error {
  constructor(status, body) {
    super(problemText(status, body));
    this.status = status;
  }
}

/** A readable sentence from an error answer (problem+json: title, status, detail). */
function problemText(status, body) {
  const keyHint = status === 401 ? " Enter a valid API key above and try again." : "";
  if (body && typeof body === "object" && (body.title || body.detail)) {
    const detail = String(body.detail || "").trim();
    return `${body.title || "Error"} (${status})${detail ? ": " + detail : ""}${/[.!?]$/.test(detail) ? "" : "."}${keyHint}`;
  }
  if (status === 401) return `This server needs an API key.${keyHint}`;
  const text = typeof body === "string" ? body.slice(0, 200) : "";
  return `The server answered ${status}${text ? ": " + text : "."}`;
}

function authHeaders() {
  const key = $("key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

function parseBody(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: authHeaders() });
  } catch (err) {
    throw new Error(`Cannot reach the server (${err.message}).`);
  }
  const body = parseBody(await response.text());
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const jobUrl = (id) => `/v1/jobs/${encodeURIComponent(id)}`;

/** POST one file to /v1/jobs with explain=true. XMLHttpRequest, not fetch: fetch reports no upload progress. */
function submit(entry) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", entry.file, entry.name);
    form.append("explain", "true");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/jobs");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      entry.upload = { done: e.loaded, total: e.total };
      changed(entry);
    };
    xhr.onload = () => {
      const body = parseBody(xhr.responseText);
      if (xhr.status === 202) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error("Cannot reach the server (the upload failed)."));
    xhr.onabort = () => reject(new Cancelled());
    entry.xhr = xhr;
    xhr.send(form);
  });
}

/* -- this tab's jobs ----------------------------------------------------------------------- */

/** A job of this tab: the file (null once the tab was reloaded), its server id once queued, its state and record. */
function newEntry(file, name = file.name, id = null, state = "waiting") {
  return { file, name, id, state, upload: { done: 0, total: file ? file.size : 0 }, progress: { done: 0, total: 0 },
    error: "", finished: null, label: null, score: null, resultStatus: null, result: null, xhr: null };
}

function saveJobs() {
  const kept = page.jobs.filter((e) => e.id).map((e) => ({ id: e.id, name: e.name }));
  sessionStorage.setItem(JOBS_STORAGE, JSON.stringify(kept));
}

function restoreJobs() {
  let kept = [];
  try {
    kept = JSON.parse(sessionStorage.getItem(JOBS_STORAGE) || "[]");
  } catch {
    // an unreadable list is dropped
  }
  page.jobs = kept.map((e) => newEntry(null, String(e.name), String(e.id), "queued")); // polling reads their real state
  renderJobs();
  if (page.jobs.length) ensurePolling();
}

/** Queue files, one job each, uploading them one after the other; the first is shown. */
async function addFiles(files) {
  const entries = [...files].map((file) => newEntry(file));
  if (!entries.length) return;
  page.jobs.unshift(...[...entries].reverse()); // newest first: the batch's last file on top
  renderJobs();
  show(entries[0]);
  for (const entry of entries) {
    if (entry.state !== "waiting") continue; // cancelled before its turn
    entry.state = "uploading";
    changed(entry);
    try {
      const job = await submit(entry);
      Object.assign(entry, { id: job.id, state: job.state, xhr: null });
      saveJobs();
      ensurePolling();
    } catch (err) {
      Object.assign(entry, err instanceof Cancelled ? { state: "cancelled" } : { state: "rejected", error: err.message });
      entry.xhr = null;
    }
    changed(entry);
  }
}

/** Take a job's view from the API into its entry; a done job's record is fetched once. */
async function update(entry, job) {
  Object.assign(entry, { state: job.state, progress: job.progress, error: job.error || "", finished: job.finished,
    label: job.label, score: job.score, resultStatus: job.result_status });
  if (job.state === "done" && !entry.result) entry.result = job.result || (await api(jobUrl(entry.id))).result;
  changed(entry);
}

/** Poll GET /v1/jobs while any of this tab's jobs is queued or running: one request for them all. */
async function ensurePolling() {
  if (page.polling) return;
  page.polling = true;
  try {
    for (;;) {
      const open = page.jobs.filter((e) => e.id && !FINAL.includes(e.state));
      if (!open.length) break;
      const listing = await api("/v1/jobs?limit=100");
      const listed = new Map(listing.jobs.map((job) => [job.id, job]));
      for (const entry of open) {
        let job = listed.get(entry.id);
        if (!job) { // older than the listing's page, or deleted
          try {
            job = await api(jobUrl(entry.id));
          } catch (err) {
            if (!(err instanceof ApiError && err.status === 404)) throw err;
            Object.assign(entry, { state: "gone", error: "This job is no longer on the server (deleted, or expired)." });
            changed(entry);
            continue;
          }
        }
        await update(entry, job);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    showMessage(err.message); // the server went away, or the key was changed: the next upload polls again
    if (page.shown && !FINAL.includes(page.shown.state)) setState("error");
  } finally {
    page.polling = false;
  }
}

/** The band a record reads as: fake, real or uncertain (confidence "low"); or no face / not scored. */
function verdictOf(result) {
  if (result.status === "no_face") return "no face";
  if (result.status !== "ok") return "not scored";
  return result.confidence === "low" ? "uncertain" : result.label;
}

function stateText(entry) {
  const { done, total } = entry.progress;
  switch (entry.state) {
    case "waiting": return "waiting to upload";
    case "uploading": return entry.upload.total ? `uploading ${Math.round((100 * entry.upload.done) / entry.upload.total)}%` : "uploading";
    case "running": return total ? `scoring: frame ${Math.min(done, total)} of ${total}` : "scoring";
    case "rejected": return "not queued";
    case "gone": return "deleted";
    default: return entry.state;
  }
}

function verdictText(entry) {
  if (entry.result) return verdictOf(entry.result);
  if (entry.resultStatus) return verdictOf({ status: entry.resultStatus, label: entry.label });
  return "";
}

/** The job list, newest first: a row per entry, made once and then updated in place (a focused name keeps its focus). */
function renderJobs() {
  $("jobs-box").hidden = !page.jobs.length;
  const body = $("jobs").tBodies[0];
  page.jobs.forEach((entry, i) => {
    if (!entry.row) entry.row = jobRow(entry);
    if (body.children[i] !== entry.row) body.insertBefore(entry.row, body.children[i] || null);
    const verdict = verdictText(entry);
    const score = entry.result ? entry.result.score : entry.score;
    const [, state, band, number] = entry.row.cells;
    state.textContent = stateText(entry);
    state.title = ["rejected", "failed", "gone"].includes(entry.state) ? entry.error : "";
    band.textContent = verdict;
    band.className = verdict ? `band ${verdict.replace(" ", "-")}` : "";
    number.textContent = typeof score === "number" ? score.toFixed(2) : "";
    entry.row.classList.toggle("current", entry === page.shown);
    if (entry === page.shown) entry.row.setAttribute("aria-current", "true");
    else entry.row.removeAttribute("aria-current");
  });
}

/** A row of the job list; its file name is a button that shows the job's result. */
function jobRow(entry) {
  const row = document.createElement("tr");
  const name = document.createElement("button");
  name.type = "button";
  name.className = "link";
  name.textContent = entry.name;
  name.addEventListener("click", () => show(entry));
  row.insertCell().append(name);
  for (let i = 0; i < 3; i++) row.insertCell();
  return row;
}

/** An entry's state or record changed: redraw the list, and the result view if it shows that entry. */
function changed(entry) {
  renderJobs();
  if (entry === page.shown) showEntry(entry);
}

/* -- the result view ----------------------------------------------------------------------- */

function setState(state) {
  document.body.dataset.state = state;
}

function showProgress(text, done, total) {
  $("status").textContent = text;
  const bar = $("progress");
  if (total) {
    bar.max = total;
    bar.value = done;
  } else {
    bar.removeAttribute("value"); // indeterminate
  }
}

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
}

/** Clear the result view for another entry: nothing of the last one stays on screen. */
function clearView() {
  if (page.url) URL.revokeObjectURL(page.url);
  Object.assign(page, { url: null, result: null, source: null, fps: null, queue: Promise.resolve(), current: -1, drawn: null });
  page.view += 1;
  if (page.stripObserver) page.stripObserver.disconnect();
  $("message").hidden = true;
  $("result").hidden = true;
  $("work").hidden = true;
  $("announce").textContent = "";
  const frame = $("frame");
  frame.width = frame.height = 0; // no picture of the last file under the next result
  $("frame-caption").textContent = "";
  for (const id of ["strip", "timeline", "legend", "heatmaps"]) $(id).replaceChildren();
  $("tracks").tBodies[0].replaceChildren();
  $("video").removeAttribute("src");
}

function show(entry) {
  if (entry === page.shown && page.drawn === entry) return; // already on screen
  page.shown = entry;
  clearView();
  renderJobs();
  showEntry(entry);
}

/** Bring the view up to date with the shown entry's state: progress, a message, or its drawn record. */
async function showEntry(entry) {
  const working = ["waiting", "uploading", "queued", "running"].includes(entry.state) || (entry.state === "done" && !entry.result);
  $("work").hidden = !working;
  $("cancel").hidden = !working;
  if (entry.state === "waiting") {
    showProgress(`Waiting to upload ${entry.name}`, 0, 0);
    setState("uploading");
  } else if (entry.state === "uploading") {
    showProgress(`Uploading ${entry.name}`, entry.upload.done, entry.upload.total);
    setState("uploading");
  } else if (working) {
    const { done, total } = entry.progress;
    if (entry.state === "queued") showProgress("Queued: waiting for the scorer", 0, 0);
    else if (total && done >= total) showProgress(`Scoring: all ${total} frames read; classifying the faces and making heat maps`, 0, 0);
    else if (total) showProgress(`Scoring: frame ${done} of ${total}`, done, total);
    else showProgress("Scoring", 0, 0);
    setState("running");
  } else if (entry.state === "done") {
    if (page.drawn === entry) return;
    page.drawn = entry;
    const view = page.view;
    setState("drawing");
    await render(entry.result, entry.file, view);
    if (view !== page.view) return;
    $("announce").textContent = announcement(entry.result);
    setState("done");
  } else if (entry.state === "cancelled") {
    showMessage("Cancelled.", "info");
    setState("cancelled");
  } else if (entry.state === "failed") {
    showMessage(`The job failed: ${entry.error || "no reason given"}.`);
    setState("error");
  } else { // rejected, gone
    showMessage(entry.error);
    setState("error");
  }
}

async function cancelShown() {
  const entry = page.shown;
  if (!entry) return;
  if (entry.state === "waiting") {
    entry.state = "cancelled"; // its upload is skipped
    changed(entry);
  } else if (entry.state === "uploading") {
    entry.xhr.abort(); // nothing was queued yet
  } else if (entry.id && !FINAL.includes(entry.state)) {
    try {
      await api(`${jobUrl(entry.id)}/cancel`, { method: "POST" });
      showProgress("Cancelling…", 0, 0);
    } catch (err) {
      showMessage(err.message);
    }
  }
}

/** One sentence for screen readers when a result is drawn. */
function announcement(result) {
  if (result.status === "ok") return `Result for ${result.path}: ${verdictOf(result)}, P(fake) ${result.score.toFixed(2)}.`;
  if (result.status === "no_face") return `Result for ${result.path}: no face found.`;
  return `${result.path} could not be scored.`;
}

/* -- the model line ------------------------------------------------------------------------ */

/** Name, version and card of the model that scores, and its weights' licence (GET /model; 503 while it loads). */
async function loadModel() {
  let model;
  try {
    model = await api("/model");
  } catch (err) {
    if (err instanceof ApiError && err.status === 503 && /loading/.test(err.message)) {
      $("model-line").textContent = "Model: loading…";
      setTimeout(loadModel, 2000);
    } else {
      $("model-line").textContent = `Model: unknown (${err.message})`;
    }
    return;
  }
  page.model = model;
  const line = $("model-line");
  const name = document.createElement("strong");
  name.textContent = model.name;
  line.replaceChildren("Model: ", name, ` version ${model.version} (${model.architecture}, threshold ${model.threshold})`);
  if (model.card) {
    const link = document.createElement("a");
    link.href = model.card;
    link.textContent = "model card";
    line.append(" · ", link);
  }
  const licence = $("licence");
  licence.textContent = `Weights licence: ${model.licence || "not stated (this model has no model card): ask whoever made it."}`;
  licence.hidden = false;
}

/* -- drawing the record ------------------------------------------------------------------ */

/** Draw a record; ``file`` is the user's own file (null after a reload of the tab), ``view`` the view it is drawn for. */
async function render(result, file, view) {
  page.result = result;
  $("result").hidden = false;
  $("raw").textContent = JSON.stringify(result, null, 2);
  renderVerdict(result);
  renderProvenance(result.provenance);
  const scored = result.status !== "error";
  const hasTracks = scored && result.tracks.length > 0;
  $("timeline-box").hidden = !(hasTracks && result.media === "video");
  $("tracks-box").hidden = !hasTracks;
  $("heatmaps-box").hidden = !(result.explanations && result.explanations.length);
  $("heatmaps-note").textContent = heatmapsNote(result);
  for (const id of ["frame", "frame-caption", "strip"]) $(id).hidden = !scored;
  $("frame-note").hidden = true;
  if (!scored) return;
  renderTracks(result);
  if (!$("timeline-box").hidden) renderTimeline(result);
  if (file) page.url = URL.createObjectURL(file);
  const source = file ? await openSource(result) : null;
  if (view !== page.view) return; // another job was chosen meanwhile
  page.source = source;
  if (!page.source) {
    $("frame").hidden = true;
    $("heatmaps-box").hidden = true; // they are drawn from the file's own pixels
    $("frame-note").hidden = false;
    $("frame-note").textContent = file
      ? "This browser cannot decode the file, so its frames are not shown; the scores hold all the same."
      : "The file is no longer at hand in this tab (the page was reloaded), so its frames are not shown; the scores hold all the same.";
    return;
  }
  await showFrame(verdictFrame(result));
  if (result.media === "video") renderStrip(result);
  await renderHeatmaps(result);
}

const percentOf = (x) => `${Math.round(x * 100)}%`;

function renderVerdict(result) {
  const box = $("verdict");
  const label = document.createElement("span");
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = result.path;
  let meaning, caveat = "";
  if (result.status === "ok") {
    const score = result.score.toFixed(2);
    const band = verdictOf(result);
    label.className = `label ${band}`;
    label.textContent = band;
    const scoreText = document.createElement("span");
    scoreText.className = "score";
    scoreText.textContent = `P(fake) = ${score}`;
    box.replaceChildren(label, scoreText, name);
    meaning =
      `Of faces that scored about ${score} on DFDC validation videos, about ${percentOf(result.score)} were fake: the score is a probability ` +
      `calibrated on those videos' face crops, with fakes and real faces taken as equally likely. ` + bandSentence(result);
    if (result.media === "video") {
      meaning += " A video's score is that of its highest-scoring person (track) among those seen in at least a quarter of the sampled frames.";
    }
    caveat =
      "Read it with care: where forgeries are rarer than real footage, as in most feeds, a high score is weaker evidence " +
      "than it reads, and faces unlike DFDC video (other forgery methods, heavy compression) are judged less reliably.";
  } else if (result.status === "no_face") {
    label.className = "label none";
    label.textContent = "no face found";
    box.replaceChildren(label, name);
    meaning =
      "unmask judges faces, and it found none in this file, so there is no score and no verdict. " +
      "Faces smaller than about 32 pixels, turned far away or heavily covered are not detected.";
  } else {
    label.className = "label none";
    label.textContent = "not scored";
    box.replaceChildren(label, name);
    meaning = `This file could not be scored: ${result.error ? result.error.detail : "unknown error"}.`;
  }
  $("meaning").textContent = meaning;
  $("caveat").textContent = caveat;
}

/** Why the file reads fake, real or uncertain: the threshold, and the uncertain band where the record has one. */
function bandSentence(result) {
  const side = result.score >= result.threshold ? "at or above" : "below";
  const band = result.uncertain_band;
  const range = band ? `${band[0].toFixed(2)} to ${band[1].toFixed(2)}` : "";
  if (result.confidence === "low") {
    return `It lies ${range ? `in the uncertain band, ${range}, ` : "in the uncertain band "}around the threshold ${result.threshold}, ` +
      `where this model's calls are often wrong, so the file is called uncertain: it leans ${result.label} ` +
      `(${side} the threshold), but do not rely on that either way.`;
  }
  return `It is ${side} the threshold ${result.threshold}${range ? ` and outside the uncertain band (${range})` : ""}, so the file is called ${result.label}.`;
}

/** What the heat maps show, read right for each verdict: they always show what raised the fake score. */
function heatmapsNote(result) {
  const what = "Grad-CAM, for the highest-scoring faces of the people that set the verdict; each map is scaled to its own face, so it " +
    "shows red even where the pull was weak.";
  if (result.status !== "ok") return what;
  const band = verdictOf(result);
  if (band === "fake") return `The regions of each face crop that pushed its score towards fake (red strongest). ${what}`;
  if (band === "real") {
    return "The regions of each face crop that raised its fake score the most (red strongest). Even so, the face was judged real: " +
      `its score stayed below the threshold. ${what}`;
  }
  return "The regions of each face crop that raised its fake score the most (red strongest). The file's score lies in the uncertain " +
    `band: read them as where to look, not as proof either way. ${what}`;
}

/** Content Credentials (C2PA) found in the file, in one line apart from the score: they never change it. */
function provenanceText(p) {
  if (!p.present) return "Content Credentials: none in this file (most files carry none; that says nothing about forgery).";
  const parts = [`Content Credentials: ${p.validation_state || "present"}`];
  if (p.signer) parts.push(`signed by ${p.signer}${p.signed_at ? ` on ${p.signed_at}` : ""}`);
  if (p.claim_generator) parts.push(`made with ${p.claim_generator}`);
  if (p.ai_content) parts.push(`declares AI-${p.ai_content} content`);
  let text = parts.join(", ") + (p.detail ? ` (${p.detail})` : "") + ".";
  if (["invalid", "malformed"].includes(p.validation_state)) text += " What they claim cannot be trusted.";
  return `${text} They say where the file claims to come from; they do not change the face score.`;
}

function renderProvenance(provenance) {
  const line = $("provenance");
  line.hidden = !provenance;
  line.textContent = provenance ? provenanceText(provenance) : "";
}

function renderTracks(result) {
  const body = $("tracks").tBodies[0];
  result.tracks.forEach((track, i) => {
    const row = body.insertRow();
    const swatch = document.createElement("i");
    swatch.className = "swatch";
    const cells = [`#${track.id}`, track.score.toFixed(2), track.frames, `${track.start.toFixed(2)} s`, `${track.end.toFixed(2)} s`,
      track.counted ? "yes" : "no: seen in too few frames"];
    cells.forEach((text) => (row.insertCell().textContent = text));
    row.cells[0].style.borderLeft = `4px solid ${TRACK_COLORS[i % TRACK_COLORS.length]}`;
  });
}

/**
 * Position of the frame to show first: of the deciding track (the counted track with the top score, which sets
 * the file's score), the frame where its face scores closest to that track score (as cli/evidence.py picks it).
 */
function verdictFrame(result) {
  const counted = result.tracks.filter((t) => t.counted);
  if (!counted.length) return 0;
  const deciding = counted.reduce((a, b) => (b.score > a.score ? b : a));
  let best = 0, distance = Infinity;
  result.frames.forEach((frame, pos) => {
    for (const face of frame.faces) {
      const d = Math.abs(face.score - deciding.score);
      if (face.track === deciding.id && d < distance) [best, distance] = [pos, d];
    }
  });
  return best;
}

/** An <img> of the uploaded image, or the <video> of the uploaded video; null when the browser cannot decode it. */
async function openSource(result) {
  if (result.media === "image") {
    const img = new Image();
    img.src = page.url;
    try {
      await img.decode();
      return img;
    } catch {
      return null;
    }
  }
  const video = $("video");
  page.fps = estimateFps(result.frames);
  const loaded = new Promise((resolve) => {
    video.onloadeddata = () => resolve(true);
    video.onerror = () => resolve(false);
    setTimeout(() => resolve(false), 20000);
  });
  video.src = page.url;
  return (await loaded) ? video : null;
}

/** The video's frame rate from the record (time = index / fps, rounded to ms). */
function estimateFps(frames) {
  const last = [...frames].reverse().find((f) => f.time > 0);
  return last ? last.index / last.time : null;
}

/**
 * Run ``draw(source, width, height)`` on the pixels of one sampled frame. Video seeks are queued
 * one at a time; each seeks to the middle of the frame so rounding never lands on its neighbour.
 */
function withPixels(frame, draw) {
  const source = page.source;
  if (source instanceof HTMLImageElement) return Promise.resolve(draw(source, source.naturalWidth, source.naturalHeight));
  const time = page.fps ? (frame.index + 0.5) / page.fps : frame.time;
  page.queue = page.queue.then(
    () =>
      new Promise((resolve) => {
        const done = () => resolve(draw(source, source.videoWidth, source.videoHeight));
        source.addEventListener("seeked", done, { once: true });
        source.currentTime = Math.min(time, Math.max(0, source.duration - 0.001));
      }),
  );
  return page.queue;
}

/**
 * Boxes and labels of one frame's faces on a canvas holding that frame (``scale``: canvas px per original px).
 * Lines and labels are sized for the canvas as shown (CSS scales it), so they read the same on a phone.
 */
function drawFaces(ctx, frame, scale, labels) {
  const canvas = ctx.canvas;
  const shown = Math.min(canvas.clientWidth / canvas.width, canvas.clientHeight / canvas.height) || 1; // CSS px per canvas px
  const line = Math.max(2, Math.round(2.5 / shown));
  const font = Math.round(14 / shown);
  for (const face of frame.faces) {
    const [x1, y1, x2, y2] = face.box.map((v) => v * scale);
    const color = rgbText(colorFor(face.score));
    ctx.lineWidth = line;
    ctx.strokeStyle = color;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (!labels) continue;
    const verdict = face.score >= page.result.threshold ? "fake" : "real";
    const text = `${verdict} ${face.score.toFixed(2)}` + (page.result.media === "video" ? ` #${face.track}` : "");
    ctx.font = `bold ${font}px system-ui, sans-serif`;
    const boxHeight = Math.round(font * 1.3);
    const top = y1 - line / 2 - boxHeight >= 0 ? y1 - line / 2 - boxHeight : y2 + line / 2; // above the box, else below
    ctx.fillStyle = color;
    ctx.fillRect(x1 - line / 2, top, ctx.measureText(text).width + 2 * line, boxHeight);
    ctx.fillStyle = "#000";
    ctx.textBaseline = "middle";
    ctx.fillText(text, x1 + line / 2, top + boxHeight / 2);
  }
}

async function showFrame(pos) {
  if (!page.source) return; // the browser could not decode this file: nothing to draw
  const result = page.result, frame = result.frames[pos], view = page.view;
  page.current = pos;
  await withPixels(frame, (source, width, height) => {
    if (view !== page.view) return; // another job was chosen meanwhile
    const canvas = $("frame");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(source, 0, 0, width, height);
    drawFaces(ctx, frame, 1, true);
  });
  const faces = frame.faces.length;
  if (view !== page.view) return;
  const where = result.media === "video" ? `Frame ${frame.index}, at ${frame.time.toFixed(2)} s: ` : "";
  const caption = where + (faces ? `${faces} face${faces === 1 ? "" : "s"}, highest score ${frame.score.toFixed(2)}.` : "no face found.");
  $("frame-caption").textContent = caption;
  $("frame").setAttribute("aria-label", `${result.path}: ${caption}`);
  for (const button of $("strip").children) button.classList.toggle("current", Number(button.dataset.pos) === pos);
}

/**
 * The strip of sampled frames, a button each. A thumbnail is drawn when it scrolls into view: each one is a seek,
 * and a browser decodes a seek from the keyframe before it, so drawing all 32 of a 1080p clip up front cost the
 * tab tens of CPU-seconds and queued every click on a frame behind them.
 */
function renderStrip(result) {
  const strip = $("strip"), view = page.view;
  if (page.stripObserver) page.stripObserver.disconnect(); // the last result's thumbnails are never drawn now
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      const pos = Number(entry.target.dataset.pos), canvas = entry.target.querySelector("canvas");
      withPixels(result.frames[pos], (source, width, height) => {
        if (view !== page.view) return; // another job was chosen meanwhile
        const scale = 240 / Math.max(width, height);
        canvas.width = Math.round(width * scale);
        canvas.height = Math.round(height * scale);
        const ctx = canvas.getContext("2d");
        ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
        drawFaces(ctx, result.frames[pos], scale, false);
      });
    }
  }, { root: strip, rootMargin: "0px 240px" }); // and the next one or two past either edge, to scroll onto
  page.stripObserver = observer;
  result.frames.forEach((frame, pos) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.pos = pos;
    button.title = `Show frame ${frame.index}`;
    button.classList.toggle("current", pos === page.current);
    const canvas = document.createElement("canvas");
    canvas.width = 240; // a blank 16:9 thumbnail until drawn, so the strip does not jump
    canvas.height = 135;
    const caption = document.createElement("span");
    caption.textContent = `${frame.time.toFixed(2)} s · ${frame.score === null ? "no face" : frame.score.toFixed(2)}`;
    button.append(canvas, caption);
    button.addEventListener("click", () => showFrame(pos));
    strip.append(button);
    observer.observe(button);
  });
}

/** Click, Enter or Space runs ``action``, and Tab reaches the element: the same for mouse, touch and keyboard. */
function clickable(element, action) {
  element.setAttribute("tabindex", "0");
  element.setAttribute("role", "button");
  element.addEventListener("click", action);
  element.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      action();
    }
  });
}

function svg(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

/** Score over time, one line per track (dashed when it does not set the verdict), threshold dashed grey. */
function renderTimeline(result) {
  const W = 640, H = 230, left = 40, right = 12, top = 10, bottom = 34;
  const end = Math.max(0.001, ...result.frames.map((f) => f.time));
  const x = (t) => left + (t / end) * (W - left - right);
  const y = (s) => top + (1 - s) * (H - top - bottom);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Face scores over time, per track" });
  for (const s of [0, 0.25, 0.5, 0.75, 1]) {
    svg("line", { x1: left, x2: W - right, y1: y(s), y2: y(s), stroke: "#e3e6ea" }, root);
    svg("text", { x: left - 6, y: y(s) + 4, "text-anchor": "end", "font-size": 11, fill: "#5b6370" }, root).textContent = s.toFixed(2);
  }
  const step = niceStep(end / 6);
  for (let t = 0; t <= end + 1e-9; t += step) {
    svg("line", { x1: x(t), x2: x(t), y1: H - bottom, y2: H - bottom + 4, stroke: "#5b6370" }, root);
    svg("text", { x: x(t), y: H - bottom + 16, "text-anchor": "middle", "font-size": 11, fill: "#5b6370" }, root).textContent = `${+t.toFixed(2)} s`;
  }
  svg("line", { x1: left, x2: W - right, y1: H - bottom, y2: H - bottom, stroke: "#5b6370" }, root);
  svg("text", { x: W - right, y: H - 2, "text-anchor": "end", "font-size": 11, fill: "#5b6370" }, root).textContent = "time";
  svg("line", { x1: left, x2: W - right, y1: y(result.threshold), y2: y(result.threshold), stroke: "#888", "stroke-dasharray": "5 4", class: "threshold" }, root);
  const legend = $("legend");
  result.tracks.forEach((track, i) => {
    const color = TRACK_COLORS[i % TRACK_COLORS.length];
    const points = [];
    result.frames.forEach((frame, pos) => {
      for (const face of frame.faces) if (face.track === track.id) points.push({ frame, pos, face });
    });
    const group = svg("g", { class: "track", "data-track": track.id }, root);
    svg("polyline", {
      points: points.map((p) => `${x(p.frame.time)},${y(p.face.score)}`).join(" "),
      fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": track.counted ? "none" : "4 3",
    }, group);
    for (const p of points) {
      const dot = svg("circle", { cx: x(p.frame.time), cy: y(p.face.score), r: 4, fill: color, "data-pos": p.pos }, group);
      svg("title", {}, dot).textContent = `track #${track.id}, ${p.frame.time.toFixed(2)} s: ${p.face.score.toFixed(2)}`;
      clickable(dot, () => showFrame(p.pos));
    }
    const item = document.createElement("li");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    item.append(swatch, `track #${track.id}: ${track.score.toFixed(2)}${track.counted ? "" : " (not counted)"}`);
    legend.append(item);
  });
  $("timeline").replaceChildren(root);
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

/** Each explained face: its crop as the model saw it, and the same crop under its Grad-CAM map. */
async function renderHeatmaps(result) {
  const box = $("heatmaps"), view = page.view;
  for (const explanation of result.explanations || []) {
    const frame = result.frames[explanation.frame];
    const face = frame.faces[explanation.face];
    const heat = new Image();
    heat.src = `data:image/png;base64,${explanation.heatmap}`;
    await heat.decode();
    const size = heat.naturalWidth;
    const [plain, overlay] = [document.createElement("canvas"), document.createElement("canvas")];
    for (const canvas of [plain, overlay]) canvas.width = canvas.height = size;
    plain.className = "crop";
    overlay.className = "heat";
    await withPixels(frame, (source) => {
      const [x1, y1, x2] = explanation.crop; // a square
      const ctx = plain.getContext("2d");
      ctx.fillStyle = "#000"; // the model's crop is black where it reaches past the frame
      ctx.fillRect(0, 0, size, size);
      drawClipped(ctx, source, x1, y1, x2 - x1, size);
    });
    const ctx = overlay.getContext("2d");
    ctx.drawImage(plain, 0, 0);
    ctx.globalAlpha = 0.5;
    ctx.drawImage(colorize(heat, size), 0, 0);
    const figure = document.createElement("figure");
    const pair = document.createElement("div");
    pair.className = "pair";
    pair.append(plain, overlay);
    const caption = document.createElement("figcaption");
    const where = result.media === "video" ? `${frame.time.toFixed(2)} s, track #${face.track}, ` : "";
    const side = face.score >= result.threshold ? "at or above" : "below";
    caption.textContent = `${where}face score ${face.score.toFixed(2)}, ${side} the threshold`;
    figure.append(pair, caption);
    for (const canvas of [plain, overlay]) canvas.setAttribute("aria-hidden", "true");
    clickable(figure, () => showFrame(explanation.frame));
    figure.setAttribute("aria-label", `Heat map: ${caption.textContent}; show its frame`);
    if (view !== page.view) return; // another job was chosen meanwhile
    box.append(figure);
  }
}

/** Draw the square (sx, sy, side) of ``source`` into a size x size canvas; the parts outside the source stay as they are. */
function drawClipped(ctx, source, sx, sy, side, size) {
  const width = source.videoWidth || source.naturalWidth, height = source.videoHeight || source.naturalHeight;
  const cx1 = Math.max(0, sx), cy1 = Math.max(0, sy), cx2 = Math.min(width, sx + side), cy2 = Math.min(height, sy + side);
  if (cx2 <= cx1 || cy2 <= cy1) return;
  const k = size / side;
  ctx.drawImage(source, cx1, cy1, cx2 - cx1, cy2 - cy1, (cx1 - sx) * k, (cy1 - sy) * k, (cx2 - cx1) * k, (cy2 - cy1) * k);
}

/** A canvas with the grayscale heat map in JET colours. */
function colorize(heat, size) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(heat, 0, 0, size, size);
  const data = ctx.getImageData(0, 0, size, size);
  for (let i = 0; i < data.data.length; i += 4) {
    const [r, g, b] = jet(data.data[i] / 255);
    data.data.set([r, g, b, 255], i);
  }
  ctx.putImageData(data, 0, 0);
  return canvas;
}

/* -- the report ------------------------------------------------------------------------- */

/** Save a blob under a file name, as a download. */
function download(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

/** The report's file name: the file's own name without its folder or suffix, safe on every system. */
function reportName(result, suffix) {
  const stem = result.path.split(/[\\/]/).pop().replace(/\.[^.]*$/, "") || "file";
  return `${stem.replace(/[^\w.-]+/g, "_")}.unmask.${suffix}`;
}

function downloadRecord() {
  const result = page.result;
  download(new Blob([JSON.stringify(result, null, 2) + "\n"], { type: "application/json" }), reportName(result, "json"));
}

/** Lines of ``text`` that fit ``width`` in the context's font, written from (x, y); returns the y below them. */
function writeWrapped(ctx, text, x, y, width, lineHeight) {
  let line = "";
  for (const word of text.split(/\s+/)) {
    const tried = line ? `${line} ${word}` : word;
    if (line && ctx.measureText(tried).width > width) {
      ctx.fillText(line, x, y);
      y += lineHeight;
      line = word;
    } else {
      line = tried;
    }
  }
  if (line) ctx.fillText(line, x, y);
  return y + lineHeight;
}

/** Draw ``image`` (a canvas) scaled into the box (x, y, width, height), keeping its shape; returns the height used. */
function drawFitted(ctx, image, x, y, width, height) {
  const k = Math.min(width / image.width, height / image.height);
  ctx.drawImage(image, x, y, image.width * k, image.height * k);
  return image.height * k;
}

/**
 * A one-page summary (A4 at 150 dpi): the file, its verdict and score, what they mean, the model and its licence,
 * the Content Credentials, the annotated frame and the heat maps as the page drew them, and the dates.
 */
function summaryCanvas(entry) {
  const result = entry.result;
  const W = 1240, H = 1754, M = 80, width = W - 2 * M;
  const canvas = document.createElement("canvas");
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.textBaseline = "top";
  const font = (size, weight = "normal") => (ctx.font = `${weight} ${size}px system-ui, sans-serif`);
  const ink = (color) => (ctx.fillStyle = color);
  ink("#5b6370");
  font(22);
  const when = (iso) => iso.replace("T", " ").replace(/\.\d+/, "").replace(/Z$|\+00:00$/, " UTC");
  let y = writeWrapped(ctx, `unmask report · scored ${entry.finished ? when(entry.finished) : "(time unknown)"} · made ${when(new Date().toISOString())}`,
    M, M, width, 30);
  ink("#1c1f24");
  font(30, "bold");
  y = writeWrapped(ctx, result.path, M, y + 10, width, 38);
  const band = result.status === "ok" ? verdictOf(result) : result.status === "no_face" ? "no face found" : "not scored";
  ink(BAND_COLORS[band] || "#5b6370");
  font(72, "bold");
  ctx.fillText(band.toUpperCase(), M, y + 10);
  if (result.status === "ok") {
    const left = M + ctx.measureText(band.toUpperCase()).width + 40;
    ink("#1c1f24");
    font(36);
    ctx.fillText(`P(fake) = ${result.score.toFixed(2)}`, left, y + 34);
  }
  y += 110;
  ink("#1c1f24");
  font(22);
  y = writeWrapped(ctx, $("meaning").textContent, M, y, width, 30);
  if (result.model) y = writeWrapped(ctx, `Model: ${result.model.name} version ${result.model.version} (${result.model.architecture}).`, M, y + 6, width, 30);
  ink("#5b6370");
  font(18);
  if (page.model && page.model.name === (result.model || {}).name && page.model.licence) {
    y = writeWrapped(ctx, `Weights licence: ${page.model.licence}`, M, y, width, 25);
  }
  if (result.provenance) y = writeWrapped(ctx, provenanceText(result.provenance), M, y + 6, width, 25);
  const faces = result.frames.reduce((n, f) => n + f.faces.length, 0);
  y = writeWrapped(ctx, `${result.media}; ${result.frames.length} frame(s) sampled, ${faces} face(s), ${result.tracks.length} person(s) (tracks).`,
    M, y + 6, width, 25);
  const heat = [...document.querySelectorAll("#heatmaps canvas.heat")].slice(0, 4);
  const footer = 60, heatSide = heat.length ? Math.min(240, (width - 30 * (heat.length - 1)) / heat.length) : 0, heatBox = heatSide + 90;
  const frame = $("frame");
  if (!frame.hidden && frame.width) y += drawFitted(ctx, frame, M, y + 16, width, H - y - 16 - footer - (heat.length ? heatBox : 0)) + 16;
  font(15);
  ink("#5b6370");
  heat.forEach((overlay, i) => {
    const x = M + i * (heatSide + 30);
    ctx.drawImage(overlay, x, y + 20, heatSide, heatSide);
    writeWrapped(ctx, overlay.closest("figure").querySelector("figcaption").textContent, x, y + 26 + heatSide, heatSide, 19);
  });
  ink("#5b6370");
  font(16);
  writeWrapped(ctx, "A score for a person to review, not evidence on its own. The record (JSON) holds every score; the heat maps show what raised " +
    "the fake score.", M, H - footer, width, 22);
  return canvas;
}

function downloadSummary() {
  const entry = page.drawn;
  summaryCanvas(entry).toBlob((blob) => download(blob, reportName(entry.result, "png")), "image/png");
}

/* -- wiring ------------------------------------------------------------------------------ */

function init() {
  const key = $("key");
  key.value = sessionStorage.getItem(KEY_STORAGE) || "";
  key.addEventListener("input", () => sessionStorage.setItem(KEY_STORAGE, key.value.trim()));
  const input = $("file");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // the same files can be chosen again
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });
  let resizing = 0; // labels are sized for the canvas as shown: redraw the frame when that changes
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => page.source && page.current >= 0 && showFrame(page.current), 250);
  });
  $("cancel").addEventListener("click", cancelShown);
  $("download-json").addEventListener("click", downloadRecord);
  $("download-png").addEventListener("click", downloadSummary);
  loadModel();
  restoreJobs();
}

window.unmask = { colorFor, page }; // for the browser test and the curious
init();
