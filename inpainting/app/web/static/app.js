// The page of `inpainting app`: open an image, brush the hole, run, show what came back.
// Talks only to the server that sent it (see inpainting/app/web/server.py for the routes).
"use strict";

const $ = (id) => document.getElementById(id);
const imageCanvas = $("image-canvas"), maskCanvas = $("mask-canvas");
const maskContext = maskCanvas.getContext("2d");
const UNDO_STEPS = 30;

let limits = null;          // from /api/info
let imageBlob = null;       // PNG of the opened image, as the server decoded it
let undoStack = [];
let tool = "brush";
let drawing = null;         // last point of the stroke being drawn
let lastRun = null;         // {hole, width, height, offsets, body, with, without} of the result
let withoutInfo = null;     // {source, label} of the "without attention" comparison, or null
let showingWithout = false;
let busy = false;

function setState(state) { document.body.dataset.state = state; }

function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "error" ? "" : "info";
  box.hidden = !text;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) { /* not JSON: fall through */ }
  return `the server answered ${response.status} ${response.statusText}`;
}

async function call(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (error) {
    throw new Error(`could not reach the app (is it still running?): ${error.message}`);
  }
  if (!response.ok) throw new Error(await errorText(response));
  return response;
}

// ---------------------------------------------------------------- opening an image
async function openBlob(blob) {
  const bitmap = await createImageBitmap(blob);
  for (const canvas of [imageCanvas, maskCanvas]) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
  }
  imageCanvas.getContext("2d").drawImage(bitmap, 0, 0);
  maskContext.clearRect(0, 0, maskCanvas.width, maskCanvas.height);
  imageBlob = blob;
  undoStack = [];
  lastRun = null;
  for (const figure of document.querySelectorAll("figure.output")) figure.hidden = true;
  $("download").hidden = true;
  $("without").hidden = true;
  $("without-label").hidden = true;
  $("run").disabled = busy;
  setState("ready");
}

async function openFile(file) {
  showMessage("");
  if (limits && file.size > limits.max_upload_bytes) {
    showMessage(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is ` +
                `${(limits.max_upload_bytes / 2 ** 20).toFixed(0)} MB`);
    return;
  }
  setState("loading");
  try {
    const response = await call("/api/images", {
      method: "POST", headers: {"Content-Type": "application/octet-stream"}, body: file});
    await openBlob(await response.blob());
  } catch (error) {
    showMessage(`${file.name}: ${error.message}`);
    setState(imageBlob ? "ready" : "idle");
  }
}

async function openSample() {
  showMessage("");
  setState("loading");
  try {
    const name = $("sample").value;
    const response = await call(`/api/sample?name=${encodeURIComponent(name)}`);
    await openBlob(await response.blob());
  } catch (error) {
    showMessage(error.message);
    setState(imageBlob ? "ready" : "idle");
  }
}

// ---------------------------------------------------------------- brushing the hole
function pointOf(event) {
  const rect = maskCanvas.getBoundingClientRect();
  return {x: (event.clientX - rect.left) * maskCanvas.width / rect.width,
          y: (event.clientY - rect.top) * maskCanvas.height / rect.height};
}

function remember() {
  undoStack.push(maskContext.getImageData(0, 0, maskCanvas.width, maskCanvas.height));
  if (undoStack.length > UNDO_STEPS) undoStack.shift();
}

function paint(from, to) {
  maskContext.globalCompositeOperation = tool === "eraser" ? "destination-out" : "source-over";
  maskContext.strokeStyle = maskContext.fillStyle = "rgb(255, 0, 90)";
  maskContext.lineWidth = Number($("brush-size").value);
  maskContext.lineCap = maskContext.lineJoin = "round";
  maskContext.beginPath();
  if (from.x === to.x && from.y === to.y) {
    maskContext.arc(to.x, to.y, maskContext.lineWidth / 2, 0, 2 * Math.PI);
    maskContext.fill();
  } else {
    maskContext.moveTo(from.x, from.y);
    maskContext.lineTo(to.x, to.y);
    maskContext.stroke();
  }
}

maskCanvas.addEventListener("pointerdown", (event) => {
  if (!imageBlob || event.button !== 0) return;
  maskCanvas.setPointerCapture(event.pointerId);
  remember();
  drawing = pointOf(event);
  paint(drawing, drawing);
});
maskCanvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const point = pointOf(event);
  paint(drawing, point);
  drawing = point;
});
for (const name of ["pointerup", "pointercancel"]) {
  maskCanvas.addEventListener(name, () => { drawing = null; });
}

function choose(newTool) {
  tool = newTool;
  $("tool-brush").setAttribute("aria-pressed", String(tool === "brush"));
  $("tool-eraser").setAttribute("aria-pressed", String(tool === "eraser"));
}

// ---------------------------------------------------------------- running the model
function base64Of(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.split(",")[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

function holeOf() {
  const alpha = maskContext.getImageData(0, 0, maskCanvas.width, maskCanvas.height).data;
  const hole = new Uint8Array(maskCanvas.width * maskCanvas.height);
  let count = 0;
  for (let i = 0; i < hole.length; i++) {
    hole[i] = alpha[4 * i + 3] >= 128 ? 1 : 0;          // the server's rule (images.py)
    count += hole[i];
  }
  return {hole, count};
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function showProgress(status) {
  const bar = $("progress"), text = $("progress-text");
  $("progress-box").hidden = false;
  if (status.state === "queued") {
    bar.removeAttribute("value");
    text.textContent = `waiting: ${status.ahead} request(s) ahead of this one`;
  } else if (status.crops && status.crops.total) {
    const {done, total} = status.crops;
    bar.value = done / total;
    text.textContent = `filling the hole on crops around it: ${done} of ${total} done, ` +
                       `${(status.elapsed || 0).toFixed(1)} s so far`;
  } else if (status.expected) {
    bar.value = Math.min(status.elapsed / status.expected, 0.99);
    text.textContent = `filling the hole: ${status.elapsed.toFixed(1)} s of about ` +
                       `${status.expected.toFixed(1)} s (estimated from the last run)`;
  } else {
    bar.removeAttribute("value");
    text.textContent = `filling the hole: ${(status.elapsed || 0).toFixed(1)} s`;
  }
}

async function run() {
  if (!imageBlob || busy) return;
  const {hole, count} = holeOf();
  if (count === 0) {
    showMessage("Brush over the part of the image to fill first.");
    return;
  }
  showMessage("");
  busy = true;
  $("run").disabled = true;
  setState("running");
  const width = maskCanvas.width, height = maskCanvas.height;
  try {
    const maskBlob = await new Promise((resolve) => maskCanvas.toBlob(resolve, "image/png"));
    const body = {image: await base64Of(imageBlob), mask: await base64Of(maskBlob)};
    const status = await runJob(body, false);
    lastRun = {hole, width, height, offsets: status.offsets, body, with: status, without: null};
    showingWithout = false;
    await showResult(status);
    setState("done");
  } catch (error) {
    showMessage(error.message);
    setState("error");
  } finally {
    busy = false;
    $("run").disabled = !imageBlob;
    $("progress-box").hidden = true;
  }
}

function loaded(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = resolve;
    img.onerror = () => reject(new Error(`could not load ${url}`));
    img.src = url;
  });
}

// One job: submit, poll with progress until it ends; its final status (or an Error).
async function runJob(body, withoutAttention) {
  const response = await call("/api/jobs", {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({...body, without_attention: withoutAttention})});
  const {id} = await response.json();
  let status;
  for (;;) {
    status = await (await call(`/api/jobs/${id}`)).json();
    if (status.state === "done" || status.state === "error") break;
    showProgress(status);
    await sleep(250);
  }
  if (status.state === "error") throw new Error(status.message);
  return status;
}

// The toggle: the result and coarse result without attention (fetched on first use).
async function toggleWithout() {
  if (!lastRun || busy || !withoutInfo) return;
  const wanted = !showingWithout;
  showMessage("");
  busy = true;
  $("run").disabled = $("without").disabled = true;
  setState("running");
  try {
    if (wanted && !lastRun.without) lastRun.without = await runJob(lastRun.body, true);
    showingWithout = wanted;
    await showResult(wanted ? lastRun.without : lastRun.with);
    setState("done");
  } catch (error) {
    showMessage(`without attention: ${error.message}`);
    setState("error");
  } finally {
    busy = false;
    $("run").disabled = !imageBlob;
    $("without").disabled = false;
    $("progress-box").hidden = true;
  }
}

async function showResult(status) {
  const pictures = status.pictures;
  const shown = [loaded($("result-img"), pictures["result.png"]),
                 loaded($("coarse-img"), pictures["coarse.png"])];
  if (pictures["attention.png"]) shown.push(loaded($("attention-img"), pictures["attention.png"]));
  await Promise.all(shown);
  const without = status.without_attention;
  const which = !without ? "" : withoutInfo.source === "ablation"
    ? " \u2014 WITHOUT ATTENTION (trained ablation model)"
    : " \u2014 WITHOUT ATTENTION (probe: attention output zeroed)";
  $("result-caption").textContent =
    `Result (the hole filled; every other pixel is the input's)${which}`;
  $("coarse-caption").textContent =
    `Coarse result (stage 1, before refinement; whole frame)${which}`;
  $("without").setAttribute("aria-pressed", String(Boolean(without)));
  $("without").hidden = !withoutInfo;
  $("without-label").hidden = !without;
  if (without) $("without-label").textContent = `Showing the fill without attention, ` +
    `${withoutInfo.label}. The attention map stays the one of the run with attention; ` +
    `press the toggle again to go back.`;
  for (const canvas of document.querySelectorAll("canvas.hover")) {
    canvas.width = status.width;
    canvas.height = status.height;
  }
  for (const figure of document.querySelectorAll("figure.output")) figure.hidden = false;
  // A model without attention (the main one built with attention=False) has no map.
  $("attention-figure").hidden = !lastRun.with.pictures["attention.png"];
  const link = $("download");
  link.href = pictures["result.png"];
  link.download = without ? "inpainted-without-attention.png" : "inpainted.png";
  link.textContent = without ? "Download this result (PNG)" : "Download result (PNG)";
  link.hidden = false;
}

// ---------------------------------------------------------------- where attention copied from
function showSource(event) {
  const canvases = document.querySelectorAll("canvas.hover");
  for (const canvas of canvases) canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  if (!lastRun) return;
  const rect = event.currentTarget.getBoundingClientRect();
  const x = Math.floor((event.clientX - rect.left) * lastRun.width / rect.width);
  const y = Math.floor((event.clientY - rect.top) * lastRun.height / rect.height);
  const inside = x >= 0 && y >= 0 && x < lastRun.width && y < lastRun.height;
  if (!inside || !lastRun.hole[y * lastRun.width + x]) {
    $("hover-text").textContent = "Hover over the hole to see where its pixels were copied from.";
    return;
  }
  const {rows, cols, cell, dy, dx} = lastRun.offsets;
  const row = Math.min(Math.floor(y / cell), rows - 1), col = Math.min(Math.floor(x / cell), cols - 1);
  const offY = dy[row * cols + col], offX = dx[row * cols + col];
  const from = {x: col * cell, y: row * cell};
  const to = {x: (col + offX) * cell, y: (row + offY) * cell};
  for (const canvas of canvases) {
    const context = canvas.getContext("2d");
    const thin = Math.max(1, canvas.width / 400);
    context.lineWidth = 2 * thin;
    context.strokeStyle = "#fff";
    context.setLineDash([3 * thin, 2 * thin]);
    context.strokeRect(from.x, from.y, cell, cell);
    context.setLineDash([]);
    context.strokeStyle = "#00e5ff";
    context.strokeRect(to.x, to.y, cell, cell);
    context.beginPath();
    context.moveTo(from.x + cell / 2, from.y + cell / 2);
    context.lineTo(to.x + cell / 2, to.y + cell / 2);
    context.stroke();
  }
  $("hover-text").textContent =
    `Pixel (${x}, ${y}) lies in the ${cell}x${cell} block at (${from.x}, ${from.y}); contextual ` +
    `attention copied it mostly from the block at (${to.x}, ${to.y}) (blue): offset ` +
    `(dy, dx) = (${offY}, ${offX}) blocks = (${offY * cell}, ${offX * cell}) px.`;
}

// ---------------------------------------------------------------- wiring
async function start() {
  $("file").addEventListener("change", (event) => {
    if (event.target.files.length) openFile(event.target.files[0]);
    event.target.value = "";
  });
  $("load-sample").addEventListener("click", openSample);
  $("brush-size").addEventListener("input", (event) => {
    $("brush-size-value").textContent = `${event.target.value} px`;
  });
  $("tool-brush").addEventListener("click", () => choose("brush"));
  $("tool-eraser").addEventListener("click", () => choose("eraser"));
  $("undo").addEventListener("click", () => {
    if (undoStack.length) maskContext.putImageData(undoStack.pop(), 0, 0);
  });
  document.addEventListener("keydown", (event) => {       // Ctrl+Z / Cmd+Z: undo
    if ((event.ctrlKey || event.metaKey) && event.key === "z") $("undo").click();
  });
  $("clear").addEventListener("click", () => {
    remember();
    maskContext.clearRect(0, 0, maskCanvas.width, maskCanvas.height);
  });
  $("run").addEventListener("click", run);
  $("without").addEventListener("click", toggleWithout);
  for (const img of ["result-img", "coarse-img", "attention-img"]) {
    $(img).parentElement.addEventListener("mousemove", showSource);
  }
  try {
    const info = await (await call("/api/info")).json();
    limits = info.limits;
    withoutInfo = info.without_attention;
    if (withoutInfo) $("without").title = `compare with: ${withoutInfo.label}`;
    $("limits").textContent = `Limits: ${limits.text}.`;
    $("model").textContent = info.model ? `model: ${info.model}` : "";
    for (const name of info.samples) {
      const option = document.createElement("option");
      option.value = option.textContent = name;
      $("sample").appendChild(option);
    }
  } catch (error) {
    showMessage(error.message);
  }
}

start();
