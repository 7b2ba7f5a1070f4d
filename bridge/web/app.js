// The status page: polls /api/status and draws it. Plain DOM, no library, nothing fetched
// from anywhere but this bridge. Every text goes in through textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"];
const POLL_MS = 2000;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

function clock(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString();
}

// OCR lines' boxes and a meter's digit cells, in the analysed image's coordinates.
function overlay(camera, last) {
  const [width, height] = last.size;
  const layer = svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  const ocr = last.results.ocr;
  for (const line of (ocr && ocr.lines) || []) {
    const points = line.box.map((p) => p.join(",")).join(" ");
    const shape = svg("polygon", { points, class: "ocr" });
    const title = svg("title");
    title.textContent = line.text;
    shape.appendChild(title);
    layer.appendChild(shape);
  }
  const meter = camera.meter;
  if (meter && last.results.meter) {
    let quad = meter.corners;
    if (!quad && meter.roi) {
      const [x, y, w, h] = meter.roi;
      quad = [[x, y], [x + w, y], [x + w, y + h], [x, y + h]];
    }
    if (quad) {
      const lerp = (a, b, t) => [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
      for (let i = 0; i < meter.digits; i += 1) {
        const t0 = i / meter.digits;
        const t1 = (i + 1) / meter.digits;
        const cell = [lerp(quad[0], quad[1], t0), lerp(quad[0], quad[1], t1),
          lerp(quad[3], quad[2], t1), lerp(quad[3], quad[2], t0)];
        layer.appendChild(svg("polygon", { points: cell.map((p) => p.join(",")).join(" "), class: "cell" }));
      }
    }
  }
  return layer;
}

function cameraCard(name, camera) {
  const card = el("article", { class: "camera", "data-camera": name });
  card.appendChild(el("h2", {}, name));
  card.appendChild(el("div", { class: "topic" }, `${camera.topic} · ${camera.tasks.join(", ")}`));
  const frame = el("div", { class: "frame" });
  const last = camera.last;
  if (last && last.image) {
    frame.appendChild(el("img", { src: last.image, alt: `last frame of ${name}`, "data-frame": last.frame_id }));
    if (last.size) frame.appendChild(overlay(camera, last));
  } else {
    frame.appendChild(el("div", { class: "none" }, last ? "images are not published" : "no frame yet"));
  }
  card.appendChild(frame);
  for (const task of camera.tasks) {
    const result = last && last.results[task];
    const row = el("div", { class: "result", "data-task": task });
    row.appendChild(el("span", { class: "task" }, task));
    const text = result ? result.text + (result.unit ? ` ${result.unit}` : "") : "–";
    row.appendChild(el("span", { class: "text" }, text));
    if (result) row.appendChild(el("span", { class: "topic" }, `  ${Math.round(result.latency_ms)} ms`));
    card.appendChild(row);
  }
  const counters = el("div", { class: "counters" });
  for (const key of ["received", "results", "errors", "superseded", "duplicates"]) {
    const item = el("span", {}, `${key} `);
    item.appendChild(el("b", {}, String(camera.counters[key])));
    counters.appendChild(item);
  }
  card.appendChild(counters);
  if (last) card.appendChild(el("div", { class: "topic" }, `analysed ${clock(last.at)} · frame ${last.frame_id.slice(0, 12)}`));
  return card;
}

function drawCameras(status) {
  const box = document.getElementById("cameras");
  const cards = Object.entries(status.cameras).map(([name, camera]) => cameraCard(name, camera));
  // Keep an image element whose frame did not change, so the picture does not flicker.
  for (const card of cards) {
    const old = box.querySelector(`article[data-camera="${CSS.escape(card.dataset.camera)}"] img`);
    const fresh = card.querySelector("img");
    if (old && fresh && old.dataset.frame === fresh.dataset.frame) fresh.replaceWith(old);
  }
  box.replaceChildren(...cards);
}

function drawChart(status) {
  const chart = document.getElementById("chart");
  const legend = document.getElementById("legend");
  const width = Math.max(300, Math.round(chart.clientWidth || 600)), height = 160, left = 40, bottom = 18;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const series = Object.entries(status.latency).filter(([, points]) => points.length);
  const end = status.now, start = end - 3600;
  const top = Math.max(100, ...series.flatMap(([, points]) => points.map((p) => p[1])));
  const x = (t) => left + ((t - start) / 3600) * (width - left - 4);
  const y = (ms) => height - bottom - (ms / top) * (height - bottom - 8);
  const parts = [svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }),
    svg("line", { x1: left, y1: 4, x2: left, y2: height - bottom, class: "axis" })];
  const label = (text, attrs) => { const node = svg("text", attrs); node.textContent = text; return node; };
  parts.push(label(`${Math.round(top)} ms`, { x: 2, y: 12 }), label("0", { x: 28, y: height - bottom }));
  parts.push(label("-60 min", { x: left, y: height - 4 }), label("now", { x: width - 26, y: height - 4 }));
  legend.replaceChildren();
  series.forEach(([key, points], i) => {
    const colour = COLOURS[i % COLOURS.length];
    const line = svg("polyline", { stroke: colour, points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ") });
    parts.push(line);
    for (const point of points) {  // a dot per result: one result alone is still seen
      parts.push(svg("circle", { cx: x(point[0]).toFixed(1), cy: y(point[1]).toFixed(1), r: 2.5, fill: colour }));
    }
    const item = el("span", {}, key);
    item.prepend(el("i", { style: `background:${colour}` }));
    legend.appendChild(item);
  });
  if (!series.length) legend.appendChild(el("span", {}, "no results in the last hour"));
  chart.replaceChildren(...parts);
}

function drawErrors(status) {
  const body = document.querySelector("#errors tbody");
  const rows = status.errors.map((error) => {
    const row = el("tr");
    for (const cell of [clock(error.at), error.camera, error.error, error.detail]) row.appendChild(el("td", {}, cell));
    return row;
  });
  if (!rows.length) {
    const row = el("tr");
    row.appendChild(el("td", { colspan: "4" }, "none"));
    rows.push(row);
  }
  body.replaceChildren(...rows);
}

function draw(status) {
  document.getElementById("bridge-id").textContent = `${status.bridge_id} · ${status.version}`;
  const health = document.getElementById("health");
  health.textContent = status.healthy ? "healthy" : status.problems.join("; ");
  health.className = `badge ${status.healthy ? "ok" : "bad"}`;
  const models = document.getElementById("models");
  models.replaceChildren(...Object.entries(status.models).map(([task, model]) =>
    el("span", { class: "model" }, `${task}: ${model.model} (${model.status})`)));
  drawCameras(status);
  drawChart(status);
  drawErrors(status);
  document.getElementById("updated").textContent = `updated ${clock(status.now)}`;
}

async function poll() {
  try {
    const response = await fetch("/api/status", { cache: "no-store" });
    if (response.ok) draw(await response.json());
    else document.getElementById("updated").textContent = `status: HTTP ${response.status}`;
  } catch (error) {
    // The bridge restarting: say so on the page, try again at the next tick.
    document.getElementById("updated").textContent = "bridge not reachable; retrying";
  }
  setTimeout(poll, POLL_MS);
}

poll();
