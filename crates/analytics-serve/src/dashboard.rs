//! The live dashboard: one HTML page with its style and script inline (nothing is fetched from
//! anywhere but this service's API). It asks for a bearer token once (kept in the tab's session
//! storage), then shows the open incidents first, the rankings (tenants, then a tenant's
//! clusters, a cluster's nodes, a node's series) and a series' values and scores with its events
//! shaded, refreshing every five seconds without a reload.

/// The page.
pub(crate) const PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>analytics serve</title>
<style>
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bad:#c2410c; --warn:#d97706; --ok:#15803d; --accent:#1d4ed8; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:#f7f8fa; }
header { display:flex; align-items:baseline; gap:16px; padding:12px 24px; background:#fff; border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0; }
#status { color:var(--muted); }
main { padding:16px 24px; display:grid; grid-template-columns: minmax(320px, 1fr) minmax(480px, 2fr); gap:16px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; }
section h2 { font-size:15px; margin:0 0 8px; }
#incidents-box { grid-column: 1 / -1; }
.inc { display:flex; gap:12px; align-items:center; padding:6px 0; border-top:1px solid var(--line); }
.inc:first-of-type { border-top:none; }
.badge { font-size:11px; text-transform:uppercase; letter-spacing:.04em; padding:2px 6px; border-radius:4px; color:#fff; background:var(--warn); }
.badge.cluster, .badge.tenant { background:var(--bad); }
.none { color:var(--muted); }
table { width:100%; border-collapse:collapse; }
td, th { text-align:left; padding:4px 6px; border-top:1px solid var(--line); }
th { color:var(--muted); font-weight:500; border-top:none; }
tr.pick { cursor:pointer; }
tr.pick:hover { background:#eef2ff; }
.bar { height:8px; border-radius:4px; background:var(--line); position:relative; min-width:80px; }
.bar > span { position:absolute; left:0; top:0; bottom:0; border-radius:4px; }
#crumbs a { color:var(--accent); cursor:pointer; text-decoration:none; }
#chart svg { width:100%; height:auto; display:block; }
.ev { margin:4px 0; }
form { display:flex; gap:8px; }
input { font:inherit; padding:4px 8px; border:1px solid var(--line); border-radius:4px; min-width:280px; }
button { font:inherit; padding:4px 12px; border:1px solid var(--accent); background:var(--accent); color:#fff; border-radius:4px; cursor:pointer; }
#error { color:var(--bad); }
</style></head>
<body>
<header><h1>analytics serve</h1><span id="status">connecting...</span><span id="error"></span></header>
<main>
<section id="login" style="grid-column:1/-1; display:none">
  <h2>Bearer token</h2>
  <form id="token-form"><input id="token" type="password" placeholder="your tenant's or the admin token" autocomplete="off"><button>Open</button></form>
</section>
<section id="incidents-box"><h2>Open incidents</h2><div id="incidents" class="none">none</div></section>
<section><h2>Rankings <span id="crumbs"></span></h2><table id="ranking"><thead><tr><th>name</th><th>score</th><th>anomalous</th><th>series</th></tr></thead><tbody></tbody></table></section>
<section><h2 id="series-title">Series</h2><div id="chart" class="none">pick a series in the rankings</div><div id="events"></div></section>
</main>
<script>
"use strict";
const state = { token: sessionStorage.getItem("analytics-token") || "", path: [], series: null };
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c]));
const colour = (s) => s >= 0.9 ? "var(--bad)" : s >= 0.5 ? "var(--warn)" : "var(--ok)";
async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + state.token } });
  const body = await r.json();
  if (!r.ok) { const e = new Error(body.error || r.status); e.status = r.status; throw e; }
  return body;
}
function bar(score) {
  return `<div class="bar" title="${score.toFixed(3)}"><span style="width:${(100 * score).toFixed(1)}%;background:${colour(score)}"></span></div>`;
}
function renderIncidents(list) {
  const box = $("incidents");
  // With nothing picked, the series view opens on the worst member of the first incident.
  if (!state.series && list.length) {
    const [node, metric] = list[0].members[0][0].split("/");
    state.series = [list[0].tenant, list[0].cluster, node, metric];
  }
  if (!list.length) { box.className = "none"; box.textContent = "none"; return; }
  box.className = "";
  box.innerHTML = list.map((i) => `<div class="inc"><span class="badge ${i.scope}">${esc(i.scope)}</span>
    <span style="flex:1">${esc(i.summary)}</span>${bar(i.score)}</div>`).join("");
}
function crumbs() {
  const parts = ["tenants"].concat(state.path);
  $("crumbs").innerHTML = "&middot; " + parts.map((p, k) => `<a data-depth="${k}">${esc(p)}</a>`).join(" / ");
  for (const a of $("crumbs").querySelectorAll("a")) a.onclick = () => { state.path = state.path.slice(0, +a.dataset.depth); refresh(); };
}
function rankingUrl() {
  const [t, c, n] = state.path.map(encodeURIComponent);
  if (state.path.length === 0) return "/api/v1/tenants";
  if (state.path.length === 1) return `/api/v1/tenants/${t}/clusters`;
  if (state.path.length === 2) return `/api/v1/tenants/${t}/clusters/${c}/nodes`;
  return `/api/v1/tenants/${t}/clusters/${c}/nodes/${n}/series`;
}
function renderRanking(rows) {
  const body = $("ranking").querySelector("tbody");
  body.innerHTML = rows.map((r) => `<tr class="pick" data-name="${esc(r.name)}"><td>${esc(r.name)}</td><td>${bar(r.score)}</td><td>${r.anomalous}</td><td>${r.series}</td></tr>`).join("");
  for (const tr of body.querySelectorAll("tr")) tr.onclick = () => {
    if (state.path.length < 3) { state.path.push(tr.dataset.name); refresh(); }
    else { state.series = state.path.concat([tr.dataset.name]); refresh(); }
  };
  crumbs();
}
function chart(points, events) {
  const W = 760, H = 260, left = 56, right = 12, top = 10, mid = 170, bottom = 240;
  if (points.length < 2) return `<p class="none">${points.length} point(s) so far</p>`;
  const t0 = Date.parse(points[0].t), t1 = Date.parse(points[points.length - 1].t);
  const x = (t) => left + (W - left - right) * (Date.parse(t) - t0) / Math.max(1, t1 - t0);
  let lo = Math.min(...points.map((p) => p.value)), hi = Math.max(...points.map((p) => p.value));
  if (hi === lo) { hi += 1; lo -= 1; }
  const y = (v) => top + (mid - top - 10) * (hi - v) / (hi - lo);
  const ys = (s) => bottom - (bottom - mid - 10) * s;
  const shade = events.map((e) => `<rect x="${x(e.start) - 2}" y="${top}" width="${Math.max(4, x(e.end) - x(e.start) + 4)}" height="${bottom - top}" fill="#fde68a" opacity="0.6"><title>${esc(e.explanation)}</title></rect>`).join("");
  const line = points.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)},${y(p.value).toFixed(1)}`).join("");
  const sline = points.map((p, k) => `${k ? "L" : "M"}${x(p.t).toFixed(1)},${ys(p.score).toFixed(1)}`).join("");
  const fmt = (v) => Math.abs(v) >= 1000 ? v.toFixed(0) : v.toPrecision(3);
  const ticks = [0, 0.5, 1].map((f) => { const t = new Date(t0 + f * (t1 - t0)).toISOString().slice(11, 16);
    return `<text x="${left + f * (W - left - right)}" y="${H - 4}" text-anchor="${f === 0 ? "start" : f === 1 ? "end" : "middle"}" font-size="11" fill="#667085">${t} UTC</text>`; }).join("");
  return `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="values and scores">${shade}
    <text x="4" y="${top + 10}" font-size="11" fill="#667085">${fmt(hi)}</text><text x="4" y="${mid - 4}" font-size="11" fill="#667085">${fmt(lo)}</text>
    <text x="4" y="${mid + 18}" font-size="11" fill="#667085">score 1</text><text x="4" y="${bottom}" font-size="11" fill="#667085">0</text>
    <line x1="${left}" x2="${W - right}" y1="${mid}" y2="${mid}" stroke="#e4e7ec"/>
    <path d="${line}" fill="none" stroke="#1d4ed8" stroke-width="1.5"/><path d="${sline}" fill="none" stroke="#c2410c" stroke-width="1.2"/>${ticks}</svg>`;
}
async function refreshSeries() {
  if (!state.series) return;
  const [t, c, n, m] = state.series;
  const q = new URLSearchParams({ tenant: t, cluster: c, node: n, metric: m });
  const s = await api("/api/v1/series?" + q);
  $("series-title").textContent = `${m} on ${n} (${t}/${c})`;
  $("chart").className = "";
  $("chart").innerHTML = chart(s.points, s.events);
  $("events").innerHTML = s.events.slice().reverse().map((e) => `<p class="ev">${bar(e.peak)} ${esc(e.explanation)}</p>`).join("");
}
async function refresh() {
  if (!state.token) { $("login").style.display = ""; $("status").textContent = "a token is needed"; return; }
  try {
    const [inc, rank] = await Promise.all([api("/api/v1/incidents"), api(rankingUrl())]);
    renderIncidents(inc.incidents);
    renderRanking(rank.rows);
    await refreshSeries();
    $("status").textContent = `as of ${inc.now.replace("T", " ").slice(0, 16)} UTC`;
    $("error").textContent = "";
    $("login").style.display = "none";
  } catch (e) {
    if (e.status === 401) { state.token = ""; sessionStorage.removeItem("analytics-token"); $("login").style.display = ""; }
    if (e.status === 404 && state.path.length) { state.path.pop(); }
    $("error").textContent = String(e.message);
  }
}
$("token-form").onsubmit = (ev) => { ev.preventDefault(); state.token = $("token").value.trim(); sessionStorage.setItem("analytics-token", state.token); refresh(); };
const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (fromHash) { state.token = fromHash; sessionStorage.setItem("analytics-token", fromHash); history.replaceState(null, "", location.pathname); }
refresh();
setInterval(refresh, 5000);
</script>
</body></html>
"##;
