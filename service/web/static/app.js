/* The unmask page: upload -> POST /v1/jobs (explain=true) -> poll GET /v1/jobs/{id} -> draw the record.
 * Cancel asks POST /v1/jobs/{id}/cancel (the job ends cancelled, as the page then says); a job the
 * page no longer wants (another file chosen) is deleted.
 *
 * Plain browser JavaScript, no framework and no build step. The frames are drawn from the
 * user's own file: an <img> for images, the browser's <video> seeked to each sampled frame for
 * videos (the server sends scores and boxes, never pixels). All text from the server or the
 * file name is set with textContent, never as HTML.
 */
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "unmask.apiKey";
const POLL_MS = 500;
const SVG = "http://www.w3.org/2000/svg";
const TRACK_COLORS = ["#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

const page = { url: null, job: null, xhr: null, result: null, source: null, fps: null, queue: Promise.resolve(), current: -1, run: 0 };

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

/** The JET colours of a heat-map value in [0, 1] (blue low, red high), as OpenCV's COLORMAP_JET. */
function jet(v) {
  const clamp = (x) => Math.max(0, Math.min(1, x));
  return [clamp(1.5 - Math.abs(4 * v - 3)), clamp(1.5 - Math.abs(4 * v - 2)), clamp(1.5 - Math.abs(4 * v - 1))].map((c) => Math.round(c * 255));
}

/* -- talking to the API ------------------------------------------------------------------ */

class Cancelled extends Error {}
/** A newer file was chosen while this one was being scored: its run stops quietly. */
class Superseded extends Error {}

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

/** POST the file to /v1/jobs with explain=true. XMLHttpRequest, not fetch: fetch reports no upload progress. */
function submit(file) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("explain", "true");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/jobs");
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => e.lengthComputable && showProgress(`Uploading ${file.name}`, e.loaded, e.total);
    xhr.onload = () => {
      const body = parseBody(xhr.responseText);
      if (xhr.status === 202) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error("Cannot reach the server (the upload failed)."));
    xhr.onabort = () => reject(new Cancelled());
    page.xhr = xhr;
    xhr.send(form);
  });
}

async function poll(id, run) {
  for (;;) {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    if (run !== page.run) throw new Superseded();
    if (["done", "failed", "cancelled"].includes(job.state)) return job;
    const { done, total } = job.progress;
    if (job.state === "queued") showProgress("Queued: waiting for the scorer", 0, 0);
    else if (total && done >= total) showProgress(`Scoring: all ${total} frames read; classifying the faces and making heat maps`, 0, 0);
    else if (total) showProgress(`Scoring: frame ${done} of ${total}`, done, total);
    else showProgress("Scoring", 0, 0);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/* -- the flow ---------------------------------------------------------------------------- */

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

function reset() {
  if (page.url) URL.revokeObjectURL(page.url);
  if (page.xhr) page.xhr.abort(); // an upload still going: the new file replaces it
  if (page.job && document.body.dataset.state === "running") {
    api(`/v1/jobs/${encodeURIComponent(page.job)}`, { method: "DELETE" }).catch(() => {}); // its scores would be shown nowhere
  }
  Object.assign(page, { url: null, job: null, xhr: null, result: null, source: null, fps: null, queue: Promise.resolve(), current: -1 });
  page.run += 1;
  $("message").hidden = true;
  $("result").hidden = true;
  $("announce").textContent = "";
  const frame = $("frame");
  frame.width = frame.height = 0; // no picture of the last file under the next result
  $("frame-caption").textContent = "";
  for (const id of ["strip", "timeline", "legend", "heatmaps"]) $(id).replaceChildren();
  $("tracks").tBodies[0].replaceChildren();
  $("video").removeAttribute("src");
}

async function start(file, note = "") {
  reset();
  const run = page.run;
  page.url = URL.createObjectURL(file);
  if (note) showMessage(note, "info");
  $("work").hidden = false;
  $("cancel").hidden = false; // an upload can be cancelled too
  setState("uploading");
  showProgress(`Uploading ${file.name}`, 0, file.size);
  try {
    const job = await submit(file);
    if (run !== page.run) { // a newer file took over as this upload ended: its job is not wanted
      api(`/v1/jobs/${encodeURIComponent(job.id)}`, { method: "DELETE" }).catch(() => {});
      return;
    }
    page.xhr = null;
    page.job = job.id;
    setState("running");
    const ended = await poll(job.id, run);
    $("cancel").hidden = true;
    $("work").hidden = true;
    if (ended.state === "done") {
      setState("drawing");
      await render(ended.result);
      if (run !== page.run) return;
      $("announce").textContent = announcement(ended.result);
      setState("done");
    } else if (ended.state === "cancelled") {
      showMessage("Cancelled.", "info");
      setState("cancelled");
    } else {
      showMessage(`The job failed: ${ended.error || "no reason given"}.`);
      setState("error");
    }
  } catch (err) {
    if (err instanceof Superseded || run !== page.run) return; // a newer file took over
    $("work").hidden = true;
    if (err instanceof Cancelled) {
      showMessage("Cancelled.", "info");
      setState("cancelled");
      return;
    }
    showMessage(err.message);
    setState("error");
  }
}

/** One sentence for screen readers when a result is drawn. */
function announcement(result) {
  if (result.status === "ok") return `Result for ${result.path}: ${result.label}, P(fake) ${result.score.toFixed(2)}.`;
  if (result.status === "no_face") return `Result for ${result.path}: no face found.`;
  return `${result.path} could not be scored.`;
}

/* -- drawing the record ------------------------------------------------------------------ */

async function render(result) {
  page.result = result;
  $("result").hidden = false;
  $("raw").textContent = JSON.stringify(result, null, 2);
  renderVerdict(result);
  const scored = result.status !== "error";
  const hasTracks = scored && result.tracks.length > 0;
  $("timeline-box").hidden = !(hasTracks && result.media === "video");
  $("tracks-box").hidden = !hasTracks;
  $("heatmaps-box").hidden = !(result.explanations && result.explanations.length);
  for (const id of ["frame", "frame-caption", "strip"]) $(id).hidden = !scored;
  $("frame-note").hidden = true;
  if (!scored) return;
  renderTracks(result);
  if (!$("timeline-box").hidden) renderTimeline(result);
  const source = await openSource(result);
  if (page.result !== result) return; // a newer file took over meanwhile
  page.source = source;
  if (!page.source) {
    $("frame").hidden = true;
    $("heatmaps-box").hidden = true; // they are drawn from the file's own pixels
    $("frame-note").hidden = false;
    $("frame-note").textContent = "This browser cannot decode the file, so its frames are not shown; the scores hold all the same.";
    return;
  }
  await showFrame(verdictFrame(result));
  if (result.media === "video") await renderStrip(result);
  await renderHeatmaps(result);
}

function renderVerdict(result) {
  const box = $("verdict");
  const label = document.createElement("span");
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = result.path;
  let meaning, caveat = "";
  if (result.status === "ok") {
    const score = result.score.toFixed(2);
    const percent = Math.round(result.score * 100);
    label.className = `label ${result.label}`;
    label.textContent = result.label;
    const scoreText = document.createElement("span");
    scoreText.className = "score";
    scoreText.textContent = `P(fake) = ${score}`;
    box.replaceChildren(label, scoreText, name);
    meaning =
      `Of faces that scored about ${score} on DFDC validation videos, about ${percent}% were fake: the score is a probability ` +
      `calibrated on those videos' face crops, with fakes and real faces taken as equally likely. It is ` +
      `${result.score >= result.threshold ? "at or above" : "below"} the threshold ${result.threshold}, so the file is called ${result.label}.`;
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
  const result = page.result, frame = result.frames[pos];
  page.current = pos;
  await withPixels(frame, (source, width, height) => {
    if (page.result !== result) return; // a newer file took over meanwhile
    const canvas = $("frame");
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(source, 0, 0, width, height);
    drawFaces(ctx, frame, 1, true);
  });
  const faces = frame.faces.length;
  const where = page.result.media === "video" ? `Frame ${frame.index}, at ${frame.time.toFixed(2)} s: ` : "";
  if (page.result !== result) return;
  const caption = where + (faces ? `${faces} face${faces === 1 ? "" : "s"}, highest score ${frame.score.toFixed(2)}.` : "no face found.");
  $("frame-caption").textContent = caption;
  $("frame").setAttribute("aria-label", `${result.path}: ${caption}`);
  for (const button of $("strip").children) button.classList.toggle("current", Number(button.dataset.pos) === pos);
}

async function renderStrip(result) {
  const strip = $("strip");
  const drawn = result.frames.map((frame, pos) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.pos = pos;
    button.title = `Show frame ${frame.index}`;
    button.classList.toggle("current", pos === page.current);
    const canvas = document.createElement("canvas");
    const caption = document.createElement("span");
    caption.textContent = `${frame.time.toFixed(2)} s · ${frame.score === null ? "no face" : frame.score.toFixed(2)}`;
    button.append(canvas, caption);
    button.addEventListener("click", () => showFrame(pos));
    strip.append(button);
    return withPixels(frame, (source, width, height) => {
      const scale = 240 / Math.max(width, height);
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      const ctx = canvas.getContext("2d");
      ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
      drawFaces(ctx, frame, scale, false);
    });
  });
  await Promise.all(drawn);
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
  const box = $("heatmaps");
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
    caption.textContent = `${where}face score ${face.score.toFixed(2)}`;
    figure.append(pair, caption);
    for (const canvas of [plain, overlay]) canvas.setAttribute("aria-hidden", "true");
    clickable(figure, () => showFrame(explanation.frame));
    figure.setAttribute("aria-label", `Heat map: ${caption.textContent}; show its frame`);
    if (page.result !== result) return; // a newer file took over meanwhile
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

/* -- wiring ------------------------------------------------------------------------------ */

function init() {
  const key = $("key");
  key.value = sessionStorage.getItem(KEY_STORAGE) || "";
  key.addEventListener("input", () => sessionStorage.setItem(KEY_STORAGE, key.value.trim()));
  const input = $("file");
  input.addEventListener("change", () => {
    if (input.files.length) start(input.files[0]);
    input.value = ""; // the same file can be chosen again
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
    const files = e.dataTransfer.files;
    if (files.length) start(files[0], files.length > 1 ? `Only the first of the ${files.length} files is scored: ${files[0].name}.` : "");
  });
  let resizing = 0; // labels are sized for the canvas as shown: redraw the frame when that changes
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => page.source && page.current >= 0 && showFrame(page.current), 250);
  });
  $("cancel").addEventListener("click", async () => {
    if (page.xhr) {
      page.xhr.abort(); // still uploading: nothing was queued yet
      return;
    }
    if (!page.job) return;
    try {
      await api(`/v1/jobs/${encodeURIComponent(page.job)}/cancel`, { method: "POST" });
      showProgress("Cancelling…", 0, 0);
    } catch (err) {
      showMessage(err.message);
    }
  });
}

window.unmask = { colorFor, page }; // for the browser test and the curious
init();
