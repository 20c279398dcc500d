#include "actors/dashboard_page.hpp"

namespace stamen {

const char* dashboard_page() {
  return R"STAMEN_PAGE(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Stamen superlink</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%;text-align:left}
tr.sel{background:#eef}tr[data-run]{cursor:pointer}
.curves{display:flex;flex-wrap:wrap;gap:1em}.curve{border:1px solid #ddd;background:#fff}
#warnings{font-family:monospace;font-size:85%;white-space:pre-wrap;color:#a40}
</style></head><body>
<h1>Stamen superlink</h1>
<p id="updated">loading...</p>
<h2>Runs</h2><table><thead><tr><th>run</th><th>app</th><th>status</th><th>rounds</th><th>last metrics</th></tr></thead><tbody id="runs"></tbody></table>
<h2>Learning curves <span id="curve-run"></span></h2><div class="curves" id="curves"></div>
<h2>Nodes <small id="nodes-note"></small></h2><table><thead><tr><th>node</th><th>address</th><th>connected since</th><th>last heartbeat</th><th>joins</th><th>runs served</th><th>replies</th><th>failures</th></tr></thead><tbody id="nodes"></tbody></table>
<h2>Recent warnings</h2><div id="warnings"></div>
<script>
"use strict";
let selected = null;
const esc = s => String(s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;","'":"&#39;"}[c]));
const when = t => t > 0 ? new Date(t * 1000).toLocaleTimeString() : "-";
function rows(body, html) { document.getElementById(body).innerHTML = html; }
// Ids are 63-bit: the API gives them as text ("id") too, since a
// browser's numbers are doubles.
// One chart per metric: a polyline per phase over the rounds.
function curve(metric, points) {
  const w = 360, h = 200, pad = 30;
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y0 = Math.min(...ys), y1 = Math.max(...ys, y0 + 1e-9);
  const sx = x => pad + (x - x0) / (x1 - x0) * (w - 2 * pad), sy = y => h - pad - (y - y0) / (y1 - y0) * (h - 2 * pad);
  const pts = points.map(p => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" ");
  return `<svg class="curve" data-metric="${esc(metric)}" data-points="${points.length}" width="${w}" height="${h}">` +
    `<text x="${pad}" y="16" font-size="12">${esc(metric)}</text>` +
    `<text x="${pad}" y="${h - 8}" font-size="10">round ${x0}..${x1}</text>` +
    `<text x="${w - pad}" y="16" font-size="10" text-anchor="end">${y0.toPrecision(3)}..${y1.toPrecision(3)}</text>` +
    `<polyline fill="none" stroke="#36c" stroke-width="2" points="${pts}"/></svg>`;
}
async function get(path) { const r = await fetch(path, {cache: "no-store"}); return r.json(); }
async function refresh() {
  try {
    const [runs, nodes, warnings] = await Promise.all([get("/api/runs"), get("/api/nodes"), get("/api/warnings")]);
    if (runs.length && (selected === null || !runs.some(r => r.id === selected)))
      selected = runs[runs.length - 1].id;
    rows("runs", runs.map(r => `<tr data-run="${r.id}" class="${r.id === selected ? "sel" : ""}">` +
      `<td>${r.id}</td><td>${esc(r.app)}</td><td>${esc(r.status)}</td><td>${r.rounds}</td>` +
      `<td>${esc(JSON.stringify(r.last_metrics))}</td></tr>`).join(""));
    for (const tr of document.querySelectorAll("tr[data-run]"))
      tr.onclick = () => { selected = tr.dataset.run; refresh(); };
    const known = {};
    for (const k of nodes.known) known[k.id] = k;
    rows("nodes", nodes.connected.map(n => `<tr><td>${n.id}</td><td>${esc(n.address)}</td>` +
      `<td>${when(n.connected_since)}</td><td>${when(n.last_heartbeat)}</td>` +
      `<td>${known[n.id] ? known[n.id].joins : 1}</td><td>${n.runs_served}</td><td>${n.replies}</td>` +
      `<td>${n.failures}</td></tr>`).join(""));
    document.getElementById("nodes-note").textContent = nodes.connected_total > nodes.connected.length
      ? `(the first ${nodes.connected.length} of ${nodes.connected_total}; /api/nodes?offset=K&limit=N pages)` : "";
    document.getElementById("warnings").textContent = warnings.join("\n");
    if (selected !== null) {
      const run = await get("/api/runs/" + selected);
      const series = {};
      for (const h of run.history || [])
        for (const [k, v] of Object.entries(h.metrics || {}))
          if (typeof v === "number") (series[h.phase + " " + k] = series[h.phase + " " + k] || []).push([h.round, v]);
      document.getElementById("curve-run").textContent = "(run " + selected + ")";
      document.getElementById("curves").innerHTML =
        Object.entries(series).map(([m, p]) => curve(m, p)).join("") || "<p>no rounds yet</p>";
    }
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("updated").textContent = "the superlink does not answer: " + e;
  }
}
refresh();
setInterval(refresh, 1000);
</script></body></html>
)STAMEN_PAGE";
}

}  // namespace stamen
