// The compare page: one trace per run in each chart (each chart's compare key), and the
// config fields that differ.
import { CHARTS } from "./chart-specs.js";
import { bindControls } from "./controls.js";
import { escapeText } from "./chart-card.js";
import { LiveChart } from "./live-chart.js";
import { addExpand, expand, setupPresentation } from "./presentation.js";
import { RunStream } from "./run-stream.js";
import { laneNames, Timeline } from "./timeline.js";
import { readView, writeView } from "./view-state.js";
import { unlocked } from "./vocabulary.js";

const DASHES = ["solid", "dot", "dash"];
const runs = JSON.parse(document.getElementById("runs-data").textContent);
const view = readView();
const container = document.getElementById("charts");
const records = Object.fromEntries(runs.map((r) => [r.id, []]));
let charts = [];

// Differing config fields, one column per run.
const table = document.getElementById("diff-table");
const head = table.createTHead().insertRow();
head.insertCell().textContent = "field";
for (const r of runs) {
  const cell = head.insertCell();
  const link = document.createElement("a");
  link.href = `/runs/${encodeURIComponent(r.id)}`;
  link.textContent = r.name;
  cell.appendChild(link);
}
const keys = [...new Set(runs.flatMap((r) => Object.keys(r.config)))];
const show = (v) => (Array.isArray(v) ? v.join(",") : String(v));
const body = table.createTBody();
for (const key of keys) {
  const values = runs.map((r) => show(r.config[key]));
  if (new Set(values).size < 2) continue;
  const row = body.insertRow();
  row.className = "diff-row";
  row.insertCell().textContent = key;
  values.forEach((v) => { row.insertCell().textContent = v; });
}

const maxLayers = Math.max(1, ...runs.map((r) => r.config.hidden.length));
// A branch beside its parent: the charts align on steps and mark where it forked.
const forks = [];
const forked = new Set();
function markFork(r, history) {
  const known = history.find((x) => x.step > 0);
  if (!r.fork_of || !known || !runs.some((p) => p.id === r.fork_of.run) || forked.has(r.id)) return;
  forked.add(r.id);
  const step = r.fork_of.step;
  const point = { step, epoch: (step * known.epoch) / known.step, wall_time: known.wall_time };
  // One fork on the page: "fork at step N"; several: each says whose, briefly.
  const whose = runs.filter((x) => x.fork_of).length > 1 ? `${r.name.slice(0, 18)}: ` : "";
  forks.push([point, `${whose}fork at step ${step}`]);
  charts.forEach((c) => c.addMarker(point, forks[forks.length - 1][1]));
}
// A diverged run's line ends where its numbers stopped being finite: say so on each chart.
function markDivergence(chart, r) {
  const step = r.summary?.diverged_at;
  const history = records[r.id];
  if (step == null || !history.length) return;
  const at = [...history].reverse().find((x) => x.step <= step) || history[history.length - 1];
  const whose = runs.length > 1 ? `${r.name.slice(0, 18)}: ` : "";
  chart.addMarker({ step, epoch: at.epoch, wall_time: at.wall_time }, `${whose}diverged at step ${step}`);
}
function buildCharts() {
  container.replaceChildren();
  charts = CHARTS.filter((spec) => !spec.only || runs.some(spec.only)).map((spec) => {
    const chart = new LiveChart(container, spec, view, () => view.layer);
    runs.forEach((r, runIndex) => {
      if (spec.compareAll) { // every statistic per run: the run's colour, a dash per statistic
        spec.traces(view.layer).forEach((trace, k) => chart.addTrace(r.id, trace.key, `${r.name}: ${trace.name}`,
          trace.axis, { colorIndex: runIndex, dash: DASHES[k % DASHES.length] }));
      } else {
        chart.addTrace(r.id, spec.compare(view.layer).key, r.name);
        chart.compareLabel = () => spec.compare(view.layer).label;
      }
    });
    addExpand(chart.card, view);
    if (view.chart === spec.id) expand(chart.card, true);
    for (const r of runs) chart.push(r.id, records[r.id]);
    for (const [point, text] of forks) chart.addMarker(point, text);
    for (const r of runs) markDivergence(chart, r);
    return chart;
  });
  window.synthgradCharts = charts;
}
const layerSelect = bindControls(view, () => charts, Array.from({ length: maxLayers }, (_, i) => i + 1));
layerSelect.addEventListener("change", (e) => { view.layer = Number(e.target.value); writeView(view); buildCharts(); });
buildCharts();
setupPresentation(view);

// One timeline per run, side by side: locked backprop against pipelined DNI.
const timelines = Object.fromEntries(runs.map((r) => {
  const card = document.createElement("figure");
  card.className = "chart-card timeline-card";
  const div = document.createElement("div");
  div.className = "chart";
  card.append(div);
  document.getElementById("timelines").append(card);
  const pipelined = unlocked(r.config);
  return [r.id, new Timeline(div, laneNames(r), `${escapeText(r.name)}: ${pipelined ? `${r.config.workers} workers, pipelined` : "locked"}`)];
}));

for (const r of runs) {
  new RunStream(r.id, {
    onSnapshot(msg) {
      records[r.id] = msg.history;
      markFork(r, msg.history);
      r.summary = { ...r.summary, ...(msg.run.summary || {}) };
      charts.forEach((c) => { c.reset(r.id); c.push(r.id, msg.history); markDivergence(c, r); });
      timelines[r.id].reset(); timelines[r.id].push(msg.history);
    },
    onMetrics(batch) {
      records[r.id].push(...batch);
      charts.forEach((c) => c.push(r.id, batch));
      timelines[r.id].push(batch);
    },
  });
}
