// The run page: status, progress, owner controls, live charts, config, share link.
import { CHARTS } from "./chart-specs.js";
import { bindControls, formatNumber } from "./controls.js";
import { FidelityHeatmap } from "./fidelity-heatmap.js";
import { defaultStep, nearestStep, rescueChanges, setupFork } from "./fork-dialog.js";
import { setupKnobs } from "./knobs.js";
import { addHelp } from "./chart-card.js";
import { LiveChart } from "./live-chart.js";
import { NetworkDiagram } from "./network-diagram.js";
import { laneNames, Timeline } from "./timeline.js";
import { addExpand, confirmAction, expand, setupPresentation } from "./presentation.js";
import { readView, writeView } from "./view-state.js";
import { RunStream } from "./run-stream.js";
import { Replay } from "./replay.js";
import { Presenter } from "./presenter.js";
import { ACTIVE, REPLAY_TIMELINES, TERMINAL, unlocked } from "./vocabulary.js";

let run = JSON.parse(document.getElementById("run-data").textContent);

const DIAGRAM_HELP = {
  backprop: "The network as configured: input, each hidden layer drawn to its width (the number under it), output. With backprop every layer waits for the true gradient to come back down through the layers above (locked). Each hidden layer's colour is the cosine between what it learns from and the true gradient, so with backprop it is always 1. Hover or focus a layer for its numbers; click it to show it in the charts.",
  dni: "Decoupled neural interfaces: each hidden layer has a small module M that predicts the layer's gradient (δ̂) from its activations alone, so the layer can update at once instead of waiting for the backward pass. The colour of each layer says how well that prediction agrees with the true gradient: blue agrees, grey is noise, red points the wrong way. Hover or focus a layer for its numbers; click it to show it in the charts.",
  cdni: "Conditioned decoupled neural interfaces: like DNI, each hidden layer's module M predicts its gradient so the layer can update at once, but the module also sees the labels y, which makes the prediction far easier. The colour of each layer says how well the prediction agrees with the true gradient: blue agrees, grey is noise, red points the wrong way. Hover or focus a layer for its numbers; click it to show it in the charts.",
  feedback_alignment: "Feedback alignment: the error travels back down through fixed random matrices B instead of the transposed weights. Nothing about B is learned; the forward weights come to align with it. The colour of each layer says how well its signal agrees with the true gradient: blue agrees, grey is noise, red points the wrong way. Hover or focus a layer for its numbers; click it to show it in the charts.",
};
const view = readView();
const container = document.getElementById("charts");
const layers = run.config.hidden.map((_, i) => i + 1);
let charts = [];
let records = []; // everything received, to rebuild charts when the layer changes
// A branch's charts start with its parent's history up to the fork, dimmed, and a marker.
let parentRecords = [];
const PARENT = "parent";

// Where the fork step sits on each x axis (records give steps per epoch; time: the
// parent's last record before the fork).
function forkPoint(step) {
  const known = [...parentRecords, ...records].find((r) => r.step > 0);
  if (!known) return null;
  const before = parentRecords[parentRecords.length - 1];
  return { step, epoch: (step * known.epoch) / known.step, wall_time: before ? before.wall_time : undefined };
}

function buildCharts() {
  container.replaceChildren();
  charts = CHARTS.filter((spec) => !spec.only || spec.only(run)).map((spec) => {
    const chart = new LiveChart(container, spec, view, () => view.layer);
    const traces = spec.traces(view.layer);
    traces.forEach((trace) => chart.addTrace(run.id, trace.key, trace.name, trace.axis));
    if (parentRecords.length) {
      traces.forEach((trace, k) => chart.addTrace(PARENT, trace.key, `${trace.name} (before the fork)`, trace.axis,
        { colorIndex: k, opacity: 0.35, legend: false }));
      chart.push(PARENT, parentRecords);
    }
    const fork = run.fork_of && forkPoint(run.fork_of.step);
    if (fork) chart.addMarker(fork, `fork at step ${run.fork_of.step}`);
    markDivergence(chart);
    chart.totalPoints = () => (lastRecord ? lastRecord.step : run.step);
    addExpand(chart.card, view);
    if (view.chart === spec.id) expand(chart.card, true);
    chart.push(run.id, records);
    // Plotly gives the chart its events once drawn: hook the click when the pointer comes.
    chart.card.addEventListener("pointerenter", () => forkOnClick(chart));
    return chart;
  });
  window.synthgradCharts = charts;
}

// A diverged run's charts say where: a line at the step its numbers stopped being finite.
function markDivergence(chart) {
  const step = run.summary?.diverged_at;
  if (step == null) return;
  const at = [...records].reverse().find((r) => r.step <= step) || records[records.length - 1];
  if (at) chart.addMarker({ step, epoch: at.epoch, wall_time: at.wall_time }, `diverged at step ${step}`);
}

const layerSelect = bindControls(view, () => charts, layers);
function selectLayer(layer) {
  view.layer = layer;
  writeView(view);
  layerSelect.value = String(layer);
  diagram.select(layer);
  buildCharts();
  stream.setLayer(layer); // the lean stream sends this layer's fields from a fresh snapshot
}
layerSelect.addEventListener("change", (e) => selectLayer(Number(e.target.value)));

const shape = JSON.parse(document.getElementById("shape-data").textContent);
const networkFigure = document.getElementById("network");
const diagram = new NetworkDiagram(networkFigure, run, { ...shape, onSelect: selectLayer });
diagram.select(view.layer);
addHelp(networkFigure, "network", "Network diagram", DIAGRAM_HELP[run.config.method]);
const heatmapCard = document.querySelector(".heatmap-card");
const heatmap = new FidelityHeatmap(document.getElementById("chart-heatmap"), layers);
const pipelined = unlocked(run.config);
// The timeline is the point of a pipelined run: beside the diagram. For a sequential run it
// goes below the charts, which stay where a lecture expects them.
if (!pipelined) document.getElementById("charts").after(document.querySelector(".timeline-card"));
const timeline = new Timeline(document.getElementById("chart-timeline"), laneNames(run),
  pipelined ? `Timeline: ${run.config.workers} workers, pipelined` : "Timeline: one layer at a time (locked)");
if (!pipelined && !run.config.diagnostics_every) {
  timeline.emptyText = "No timeline: a sequential run times the steps it diagnoses,<br>and this run's diagnostics are off";
}
addHelp(document.querySelector(".timeline-card"), "timeline", "Timeline", pipelined
  ? "When each worker worked, over the last seconds of training. Each worker owns a stage of layers and updates them as soon as its synthetic gradient is ready, then goes on with the next batch: the bars of different workers overlap in time. Grey with no bar is time a worker waited for input from the stage below."
  : "When each layer worked, over the last seconds of training (steps with diagnostics). A sequential run does one thing at a time: each layer's forward pass, then the backward pass (or the synthetic gradients), then each layer's update. Grey with no bar is time that layer waited: locked.");
addHelp(heatmapCard, "heatmap", "Fidelity heatmap", "One row per hidden layer, one column per stretch of training. The colour is the cosine between the signal the layer learned from and the true gradient: blue where they agree, grey where the layer was learning from noise, red where it was pushed the wrong way. Read it left to right to see which layer went wrong, and when.");

const statusEl = document.getElementById("status");
const connection = document.getElementById("connection");
const progressBar = document.getElementById("progress-bar");
const progressText = document.getElementById("progress-text");
const banner = document.getElementById("banner");
let lastRecord = null;

// "live" only while the run trains: a paused or ended run says its status alone.
let connectionState = "";
function showConnection() {
  const live = run.status === "running" || run.status === "queued";
  connection.textContent = connectionState === "reconnecting" ? "reconnecting…" : connectionState === "live" && live ? "live" : "";
  connection.className = `conn conn-${connectionState}`;
}

function showStatus(status, extra = {}) {
  if (status === "deleted") {
    banner.hidden = false;
    banner.textContent = "This run was deleted: its records are gone. ";
    const home = document.createElement("a");
    home.href = "/"; home.textContent = "See the other runs";
    banner.append(home);
    canControl = false;
    updateControls();
    return;
  }
  run.status = status;
  statusEl.textContent = status === "paused" && run.parked ? "paused (parked)" : status;
  showConnection();
  statusEl.className = `status status-${status}`;
  if (status === "diverged") {
    banner.hidden = false;
    banner.textContent = `This run diverged at step ${extra.diverged_at ?? extra.step ?? run.step}: a loss or weight became non-finite.`;
    explainDivergence();
  } else if (status === "finished") {
    warnIfExploded();
  } else if (status === "failed" || status === "interrupted") {
    banner.hidden = false;
    banner.textContent = status === "failed" ? `This run failed: ${extra.error || run.error || "unknown error"}` :
      "This run was interrupted when the server stopped; what it recorded is kept.";
  }
  updateControls();
}

// A diverged run's banner says why, from the engine's explanation in its summary: the step,
// what went non-finite first, what ran away and what to try.
async function explainDivergence() {
  let summary = run.summary || {};
  if (!summary.divergence) {
    const response = await fetch(`/api/runs/${run.id}`);
    if (response.ok) run.summary = summary = (await response.json()).summary || {};
  }
  if (summary.divergence) banner.textContent = `This run diverged. ${summary.divergence.text}`;
  updateControls();
}

// A finished run whose loss blew up is still "finished": say so (the engine's rule:
// an epoch's mean loss above 1000x the untrained network's).
async function warnIfExploded() {
  let summary = run.summary || {};
  if (summary.exploded_at == null) {
    const response = await fetch(`/api/runs/${run.id}`);
    if (response.ok) summary = (await response.json()).summary || {};
  }
  if (summary.exploded_at == null) return;
  banner.hidden = false;
  banner.textContent = `The loss exploded at step ${summary.exploded_at}: an epoch's mean loss passed 1000x the untrained network's. ` +
    "The run finished, but these are not a trained network's numbers; try a smaller learning rate.";
}

function showProgress() {
  const step = lastRecord ? lastRecord.step : run.step;
  const fraction = run.total_steps ? step / run.total_steps : 0;
  progressBar.style.width = `${(100 * fraction).toFixed(1)}%`;
  let text = `step ${step} / ${run.total_steps}`;
  if (lastRecord && lastRecord.wall_time > 0) {
    const rate = step / lastRecord.wall_time;
    if (run.status === "running") text += ` · ${rate.toFixed(0)} steps/s · ETA ${((run.total_steps - step) / rate).toFixed(0)} s`;
    text += ` · loss ${formatNumber(lastRecord.loss)} · accuracy ${formatNumber(lastRecord.accuracy, 3)}`;
  }
  progressText.textContent = text;
}

// Owner controls: shown only where the API says this browser may control the run.
const controls = document.getElementById("controls");
let canControl = false;
function updateControls() {
  controls.hidden = !canControl;
  document.getElementById("pause-button").disabled = run.status !== "running";
  document.getElementById("resume-button").disabled = run.status !== "paused";
  document.getElementById("resume-button").title = run.status === "paused" && run.parked ?
    "Parked: its training slot went to other runs. Resume queues it; it goes on from exactly where it paused." : "";
  document.getElementById("stop-button").disabled = !ACTIVE.has(run.status);
  document.getElementById("fork-button").disabled = !FORKABLE.has(run.status);
  document.getElementById("rescue").hidden = !canControl || run.status !== "diverged";
  document.getElementById("knobs").hidden = !canControl || !ACTIVE.has(run.status);
}
// A click on a point of a chart opens the fork dialog at that step (for an owner, on a run
// a branch can start from).
function forkOnClick(chart) {
  if (chart.div.dataset.forkClick || typeof chart.div.on !== "function") return;
  chart.div.dataset.forkClick = "1";
  chart.div.on("plotly_click", (event) => {
    if (!canControl || !FORKABLE.has(run.status) || !event.points.length) return;
    const step = nearestStep(records, view.x, event.points[0].x);
    if (step !== null) forkDialog.open(Math.min(step, defaultStep(run)));
  });
}

// Runs a branch can start from: a paused one's live state, any ended one's checkpoints.
const FORKABLE = new Set(["paused", "finished", "stopped", "diverged", "interrupted"]);
const forkDialog = setupFork(run);
document.getElementById("rescue-button").addEventListener("click", () =>
  forkDialog.open(Math.max(0, run.step - 1), rescueChanges(run)));
setupKnobs(run);
if (run.fork_of) {
  fetch(`/api/runs/${encodeURIComponent(run.fork_of.run)}/metrics?max_points=2000`)
    .then((r) => (r.ok ? r.json() : { records: [] }))
    .then((body) => {
      parentRecords = body.records.filter((r) => r.step <= run.fork_of.step);
      if (parentRecords.length) buildCharts();
    });
}
fetch(`/api/runs/${encodeURIComponent(run.id)}`).then((r) => r.json()).then((fresh) => {
  canControl = Boolean(fresh.can_control);
  updateControls();
});
const runUrl = `/api/runs/${encodeURIComponent(run.id)}`;
async function control(action) {
  const response = await fetch(`${runUrl}/${action}`, { method: "POST" });
  const body = await response.json();
  if (response.ok) showStatus(body.status);
  else { banner.hidden = false; banner.textContent = body.detail; }
}
document.getElementById("pause-button").addEventListener("click", () => control("pause"));
document.getElementById("resume-button").addEventListener("click", () => control("resume"));
document.getElementById("stop-button").addEventListener("click", async () => {
  if (await confirmAction("Stop this run for good? What it recorded is kept, but it cannot be resumed.", "Stop run")) control("stop");
});
document.getElementById("delete-button").addEventListener("click", async () => {
  if (!(await confirmAction(`Delete “${run.name}” and every record it made? This cannot be undone.`, "Delete run"))) return;
  const response = await fetch(runUrl, { method: "DELETE" });
  if (response.ok) location.href = "/";
  else { banner.hidden = false; banner.textContent = (await response.json()).detail; }
});

// Rename: the owner edits the name in place.
const nameEl = document.getElementById("run-name");
const renameForm = document.getElementById("rename-form");
const renameInput = document.getElementById("rename-input");
function editing(on) {
  renameForm.hidden = !on; nameEl.hidden = on;
  if (on) { renameInput.value = run.name; renameInput.focus(); renameInput.select(); }
}
document.getElementById("rename-button").addEventListener("click", () => editing(true));
document.getElementById("rename-cancel").addEventListener("click", () => editing(false));
renameForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch(runUrl, {
    method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: renameInput.value }),
  });
  const body = await response.json();
  if (!response.ok) { banner.hidden = false; banner.textContent = Array.isArray(body.detail) ? body.detail[0].msg : body.detail; return; }
  run.name = body.name;
  nameEl.textContent = body.name;
  document.title = `${body.name} · synthgrad`;
  editing(false);
});

setupPresentation(view, {
  onSpace() {
    if (!canControl) return;
    if (run.status === "running") control("pause");
    else if (run.status === "paused") control("resume");
  },
});

document.getElementById("share-button").addEventListener("click", async (e) => {
  const link = location.href;
  try { await navigator.clipboard.writeText(link); e.target.textContent = "Link copied"; }
  catch { window.prompt("Copy this link:", link); }
});

const configTable = document.getElementById("config-table");
for (const [key, value] of Object.entries(run.config)) {
  const row = configTable.insertRow();
  row.insertCell().textContent = key;
  row.insertCell().textContent = Array.isArray(value) ? value.join(",") : String(value);
}

const loading = document.getElementById("loading");
// Charts appear with the first records; until then the page says what it waits for.
function showLoaded() {
  if (records.length === 0 && !replay?.records.length) {
    loading.textContent = TERMINAL.has(run.status) ? "This run recorded no steps." :
      run.status === "queued" ? "Queued: the run starts when a training slot is free." : "Waiting for the first step…";
    return;
  }
  if (!loading.hidden) {
    loading.hidden = true;
    document.getElementById("lab").hidden = false;
    container.hidden = false;
  }
}
// Every picture takes new records here, live or replayed.
function addRecords(batch) {
  if (!batch.length) return;
  records.push(...batch);
  if (records.length > 20000) records = records.filter((_, i) => i % 2 === 0 || i > records.length - 5000);
  lastRecord = batch[batch.length - 1];
  charts.forEach((c) => c.push(run.id, batch));
  heatmap.push(batch);
  timeline.push(batch);
  diagram.update(batch);
  showProgress();
  showLoaded();
}
function clearRecords() {
  records = [];
  lastRecord = null;
  charts.forEach((c) => c.reset(run.id));
  heatmap.reset(); timeline.reset();
  diagram.latest = {};
}
// Replay (a run that has ended, ?replay=1&speed=…): the pictures start again from step 0.
let replay = null;
const replayButton = document.createElement("button");
replayButton.type = "button"; replayButton.id = "replay-button"; replayButton.textContent = "Replay this run";
replayButton.hidden = true;
document.querySelector(".share").append(replayButton);
function startReplay(speed) {
  replayButton.hidden = true;
  timeline.emptyText = `No timeline at this step:<br>a replay keeps its last ${REPLAY_TIMELINES} steps' timelines`;
  replay = new Replay(document.getElementById("progress-text"), { reset: clearRecords, push: addRecords }, { speed });
  return replay;
}
replayButton.addEventListener("click", () => startReplay("1").load(records.slice()).play());
const asked = new URLSearchParams(location.search);
if (asked.get("replay") === "1" && TERMINAL.has(run.status)) startReplay(asked.get("speed") || "1");

buildCharts();
showStatus(run.status, run.summary || {});
showProgress();
const stream = new RunStream(run.id, {
  onSnapshot(msg) {
    run = { ...run, ...msg.run };
    if (replay) {
      const first = replay.records.length === 0; // later ones: another layer's fields
      replay.load(msg.history, !first);
      if (first) replay.play();
    } else {
      clearRecords();
      addRecords(msg.history);
    }
    showStatus(msg.status, msg.run.summary || {});
    charts.forEach(markDivergence);
    showLoaded();
    showProgress();
  },
  onMetrics(batch) {
    addRecords(batch);
  },
  onStatus(msg) {
    if (msg.step !== undefined && msg.step !== null) run.step = msg.step;
    run.parked = Boolean(msg.parked); // a paused run that gave its training slot back
    if (msg.diverged_at != null) run.summary = { ...run.summary, diverged_at: msg.diverged_at };
    showStatus(msg.status, msg);
    charts.forEach(markDivergence);
    showProgress();
    showLoaded();
    replayButton.hidden = Boolean(replay) || !["finished", "diverged", "stopped"].includes(run.status);
  },
  onConnection(state) {
    connectionState = state;
    showConnection();
  },
}, { detail: "lean", layer: view.layer });
new Presenter(run.id, {
  view, replay: () => replay, canControl: () => canControl,
  startReplay: () => (TERMINAL.has(run.status) && records.length ? startReplay("1").load(records.slice()) : null),
});
