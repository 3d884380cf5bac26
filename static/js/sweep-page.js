// The sweep page: one line per group (a grid point without the seed) on the compare page's
// charts: the mean over its seeds and a band from the lowest to the highest; the groups'
// results table; the runs; controls that act on every unfinished run.
import { CHARTS } from "./chart-specs.js";
import { formatNumber } from "./controls.js";
import { CHART_CONFIG, PALETTE } from "./plotly-config.js";
import { RunStream } from "./run-stream.js";
import { usesModules } from "./vocabulary.js";

const BINS = 120; // step ranges per group: each run's points in a range are averaged first
const REDRAW_MS = 1000;
const embedded = JSON.parse(document.getElementById("sweep-data").textContent);
let sweep = embedded.sweep;
const params = new URLSearchParams(location.search);
let layer = Number(params.get("layer")) || 1;

const fields = embedded.fields.filter((f) => f !== "seed"); // in the grid's order
const show = (v) => (Array.isArray(v) ? v.join(",") : String(v));
const groupKey = (point) => JSON.stringify(fields.map((f) => point[f]));
const groupLabel = (point) => fields.map((f) => (f === "method" ? show(point[f]) : `${f} ${show(point[f])}`)).join(", ") || "all runs";

// Groups in grid order, each with its runs; a colour per group, the same on every chart.
const groups = [];
for (const run of sweep.runs) {
  const key = groupKey(run.point);
  let group = groups.find((g) => g.key === key);
  if (!group) {
    group = { key, label: groupLabel(run.point), runs: [], color: PALETTE[groups.length % PALETTE.length] };
    groups.push(group);
  }
  group.runs.push(run);
}
const records = Object.fromEntries(sweep.runs.map((r) => [r.id, []]));

// -- charts -----------------------------------------------------------------------
const container = document.getElementById("charts");
const hasModules = sweep.runs.some((r) => usesModules(r.config.method));
const specs = CHARTS.filter((spec) => spec.id !== "module" || hasModules);
const cards = specs.map((spec) => {
  const card = document.createElement("figure");
  card.className = "chart-card";
  const div = document.createElement("div");
  div.className = "chart";
  div.id = `sweep-chart-${spec.id}`;
  const note = document.createElement("figcaption");
  note.className = "chart-note";
  card.append(div, note);
  container.append(card);
  return { spec, div, note };
});

function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

// Per group: bins of the step axis; each run's mean in a bin, then mean/min/max over runs.
function aggregate(group, key) {
  const total = Math.max(...group.runs.map((r) => r.total_steps), 1);
  const width = Math.max(1, Math.ceil(total / BINS));
  const perBin = new Map(); // bin -> values (one per run)
  for (const run of group.runs) {
    const sums = new Map();
    for (const record of records[run.id]) {
      const value = record[key];
      if (value === null || value === undefined || !Number.isFinite(value)) continue;
      const bin = Math.floor((record.step - 1) / width);
      const s = sums.get(bin) || [0, 0];
      s[0] += value; s[1] += 1;
      sums.set(bin, s);
    }
    for (const [bin, [sum, n]] of sums) {
      if (!perBin.has(bin)) perBin.set(bin, []);
      perBin.get(bin).push(sum / n);
    }
  }
  const bins = [...perBin.keys()].sort((a, b) => a - b);
  const x = bins.map((b) => Math.min(total, (b + 1) * width));
  const values = bins.map((b) => perBin.get(b));
  return {
    x,
    mean: values.map((v) => v.reduce((a, b) => a + b, 0) / v.length),
    min: values.map((v) => Math.min(...v)),
    max: values.map((v) => Math.max(...v)),
    seeds: Math.max(0, ...values.map((v) => v.length)),
  };
}

// How many powers of ten the traces' positive values span (a log axis labels only the
// decades when there are some, else Plotly's own ticks).
function decades(traces) {
  let lo = Infinity, hi = -Infinity;
  for (const t of traces) for (const v of t.y) if (v > 0 && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return Number.isFinite(lo) ? Math.log10(hi / lo) : 0;
}

function draw({ spec, div, note }) {
  const { key, label } = spec.compare(layer);
  const traces = [];
  let seeds = 0;
  for (const group of groups) {
    const a = aggregate(group, key);
    seeds = Math.max(seeds, a.seeds);
    const line = { width: 0 };
    traces.push({ x: a.x, y: a.min, mode: "lines", line, hoverinfo: "skip", showlegend: false, legendgroup: group.key });
    traces.push({ x: a.x, y: a.max, mode: "lines", line, fill: "tonexty", fillcolor: rgba(group.color, 0.18),
                  hoverinfo: "skip", showlegend: false, legendgroup: group.key });
    traces.push({ x: a.x, y: a.mean, mode: "lines", name: group.label, legendgroup: group.key,
                  line: { color: group.color, width: 2 }, hovertemplate: `${group.label}: %{y:.4g} at step %{x}<extra></extra>` });
  }
  const y = spec.axes.y;
  // The page's colours (dark or light scheme), as the run page's charts use them.
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue("--fg").trim(), grid = css.getPropertyValue("--grid").trim();
  const layout = {
    title: { text: `${spec.title}: ${label}`, font: { size: 15 }, x: 0, xref: "paper", xanchor: "left" },
    font: { color: fg },
    margin: { l: 55, r: 15, t: 45, b: 30 },
    xaxis: { title: { text: "step", standoff: 4 }, automargin: true, gridcolor: grid, zeroline: false },
    yaxis: { title: { text: label }, type: y.type, ...(y.range ? { range: y.range } : {}), automargin: true,
             ...(y.type === "log" && decades(traces) >= 1 ? { dtick: 1, tickformat: "~g" } : {}),
             gridcolor: grid, zeroline: false },
    legend: { orientation: "h", y: -0.22, yanchor: "top" },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    uirevision: `${spec.id}-${layer}`,
  };
  window.Plotly.react(div, traces, layout, CHART_CONFIG);
  note.textContent = `Mean over up to ${seeds} seed${seeds === 1 ? "" : "s"} (line) and lowest to highest (band); each run's points averaged over ${BINS} step ranges first.`;
}

let dirty = true;
function redraw() {
  if (!dirty || !window.Plotly) return;
  dirty = false;
  cards.forEach(draw);
}
setInterval(redraw, REDRAW_MS);
window.addEventListener("load", redraw);

const layerSelect = document.getElementById("layer");
const depth = Math.max(1, ...sweep.runs.map((r) => r.config.hidden.length));
for (let l = 1; l <= depth; l++) layerSelect.add(new Option(`hidden ${l}`, String(l)));
layer = Math.min(layer, depth);
layerSelect.value = String(layer);
layerSelect.addEventListener("change", () => {
  layer = Number(layerSelect.value);
  params.set("layer", String(layer));
  history.replaceState(null, "", `${location.pathname}?${params}`);
  dirty = true;
  redraw();
});

for (const run of sweep.runs) {
  new RunStream(run.id, {
    onSnapshot(msg) { records[run.id] = msg.history; dirty = true; },
    onMetrics(batch) { records[run.id].push(...batch); dirty = true; },
  });
}

// -- tables -----------------------------------------------------------------------
function row(table, cells, header = false) {
  const tr = (header ? table.createTHead() : table.tBodies[0] || table.createTBody()).insertRow();
  for (const [text, label] of cells) {
    const cell = document.createElement(header ? "th" : "td");
    if (header) cell.scope = "col";
    if (text instanceof Node) cell.append(text); else cell.textContent = text;
    if (label) cell.dataset.label = label;
    tr.append(cell);
  }
  return tr;
}
const spread = (g, f) => (g[`${f}_mean`] === null ? "–" : `${formatNumber(g[`${f}_mean`], 3)} (${formatNumber(g[`${f}_min`], 3)}–${formatNumber(g[`${f}_max`], 3)})`);

function drawResults() {
  const table = document.getElementById("results-table");
  table.replaceChildren();
  const fidelity = [...new Set(sweep.groups.flatMap((g) => Object.keys(g.fidelity)))].sort();
  const cos = fidelity.filter((k) => k.startsWith("cos_h"));
  const err = fidelity.filter((k) => k.startsWith("rel_err_h"));
  const layers = (keys) => keys.map((k) => `h${k.split("_h")[1]}`).join(" / ");
  const head = [["group"], ["runs"], ["train accuracy, mean (min–max)"], ["held-out accuracy"]];
  if (cos.length) head.push([`cosine ${layers(cos)}, last epoch`], [`relative error ${layers(err)}`]);
  row(table, head, true);
  for (const g of sweep.groups) {
    const group = groups.find((x) => x.key === groupKey(g));
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = group ? group.color : "transparent";
    const name = document.createElement("span");
    name.append(swatch, group ? group.label : groupLabel(g));
    const cells = [[name, "Group"], [`${g.done} of ${g.n} done`, "Runs"],
                   [spread(g, "accuracy"), "Train accuracy"], [spread(g, "test_accuracy"), "Held-out accuracy"]];
    if (cos.length) {
      cells.push([cos.map((k) => formatNumber(g.fidelity[k], 2)).join(" / "), "Cosine"]);
      cells.push([err.map((k) => formatNumber(g.fidelity[k], 2)).join(" / "), "Relative error"]);
    }
    row(table, cells);
  }
}

function drawRuns() {
  const table = document.getElementById("sweep-runs");
  table.replaceChildren();
  row(table, [["run"], ["status"], ["progress"], ["held-out accuracy"]], true);
  for (const run of sweep.runs) {
    const link = document.createElement("a");
    link.href = `/runs/${encodeURIComponent(run.id)}`;
    link.textContent = run.name;
    const status = row(table, [[link, "Run"], [run.status, "Status"],
                               [`${run.total_steps ? Math.round((100 * run.step) / run.total_steps) : 0}%`, "Progress"],
                               [formatNumber(run.summary.test_accuracy, 3), "Held-out accuracy"]]);
    status.cells[1].className = `status status-${run.status}`;
  }
}

function render() {
  document.getElementById("status").textContent = sweep.status;
  document.getElementById("controls").hidden = !sweep.can_control || ["finished", "ended", "empty"].includes(sweep.status);
  drawResults();
  drawRuns();
}

async function refresh() {
  const response = await fetch(`/api/sweeps/${encodeURIComponent(sweep.id)}`);
  if (!response.ok) return;
  sweep = await response.json();
  render();
}
render();
refresh(); // the embedded copy cannot know whether this visitor owns the sweep
const over = () => ["finished", "ended", "empty"].includes(sweep.status);
const timer = setInterval(() => { if (over()) clearInterval(timer); else refresh(); }, 2000);

for (const button of document.querySelectorAll("#controls [data-action]")) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    await fetch(`/api/sweeps/${encodeURIComponent(sweep.id)}/${button.dataset.action}`, { method: "POST" });
    button.disabled = false;
    refresh();
  });
}
document.getElementById("share-button").addEventListener("click", async (e) => {
  try { await navigator.clipboard.writeText(location.href); e.target.textContent = "Link copied"; }
  catch { window.prompt("Copy this link:", location.href); }
});
