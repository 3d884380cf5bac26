// Shared dashboard code: live charts with batched redraws, and a reconnecting run stream.
"use strict";

const MAX_POINTS = 5000; // per trace; older points are thinned by min/max buckets
const REDRAW_MS = 100; // at most ~10 redraws a second

// What each chart shows. `keys(layer)` are record fields; `perRun` charts in compare
// mode draw one of those keys per run.
const CHARTS = [
  { id: "loss", title: "Loss", keys: () => ["loss", "test_loss"], names: ["train (batch)", "held-out"] },
  { id: "accuracy", title: "Accuracy", keys: () => ["accuracy", "test_accuracy"], names: ["train (batch)", "held-out"] },
  { id: "fidelity", title: "Gradient fidelity: cos(rule, true) and relative error",
    keys: (l) => [`cos_h${l}`, `rel_err_h${l}`], names: ["cosine", "relative error"] },
  { id: "weights", title: "Weights: norm, std, update ratio",
    keys: (l) => [`w_norm_l${l}`, `w_std_l${l}`, `update_ratio_l${l}`], names: ["norm", "std", "update ratio"] },
  { id: "module", title: "Synthetic-gradient module loss", keys: (l) => [`module_loss_h${l}`], names: ["module loss"],
    only: (run) => run.config.method === "dni" || run.config.method === "cdni" },
];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Exponential moving average that accounts for uneven spacing (weight s per median step).
function smooth(xs, ys, s) {
  if (!s || ys.length === 0) return ys;
  const gaps = [];
  for (let i = 1; i < xs.length && gaps.length < 100; i++) gaps.push(xs[i] - xs[i - 1]);
  gaps.sort((a, b) => a - b);
  const unit = gaps.length ? gaps[gaps.length >> 1] || 1 : 1;
  const out = new Array(ys.length);
  let value = null, weight = 0, lastX = null;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !Number.isFinite(y)) { out[i] = null; continue; }
    const decay = lastX === null ? 0 : Math.pow(s, (xs[i] - lastX) / unit);
    value = value === null ? y : decay * value + (1 - decay) * y;
    weight = decay * weight + (1 - decay);
    lastX = xs[i];
    out[i] = weight > 0 ? value : y; // value is already normalised by construction
  }
  return out;
}

// Keep at most `limit` points: the newest half as is, older ones by min/max buckets.
function thin(series, limit) {
  const n = series.y.length;
  if (n <= limit) return;
  const keepRecent = limit >> 1, old = n - keepRecent, buckets = (limit - keepRecent) >> 1;
  const idx = [];
  for (let b = 0; b < buckets; b++) {
    const lo = Math.floor((b * old) / buckets), hi = Math.floor(((b + 1) * old) / buckets);
    let mn = lo, mx = lo;
    for (let i = lo; i < hi; i++) {
      if (series.y[i] < series.y[mn]) mn = i;
      if (series.y[i] > series.y[mx]) mx = i;
    }
    if (mn <= mx) { idx.push(mn); if (mx !== mn) idx.push(mx); } else { idx.push(mx, mn); }
  }
  for (let i = old; i < n; i++) idx.push(i);
  for (const key of ["step", "epoch", "wall_time", "y"]) series[key] = idx.map((i) => series[key][i]);
}

// One figure: traces keyed by (run, field); points arrive in batches, redraws are batched.
class LiveChart {
  constructor(container, spec, view) {
    this.spec = spec;
    this.view = view; // shared settings: smoothing, log, x, layer
    this.div = document.createElement("div");
    this.div.className = "chart";
    this.div.id = `chart-${spec.id}`;
    container.appendChild(this.div);
    this.traces = []; // {run, key, name, step:[], epoch:[], wall_time:[], y:[], pending: []}
    this.dirty = false;
    this.inFlight = false;
    this.lastDraw = 0;
    this.drawn = false;
  }

  addTrace(run, key, name) {
    this.traces.push({ run, key, name, step: [], epoch: [], wall_time: [], y: [], pending: [] });
  }

  // Records for one run; returns nothing, schedules a redraw.
  push(runId, records) {
    for (const t of this.traces) {
      if (t.run !== runId) continue;
      for (const r of records) {
        if (!(t.key in r)) continue;
        t.pending.push(r);
      }
    }
    this.schedule();
  }

  reset(runId) {
    for (const t of this.traces) {
      if (t.run !== runId) continue;
      t.step = []; t.epoch = []; t.wall_time = []; t.y = []; t.pending = [];
    }
    this.drawn = false;
    this.schedule();
  }

  pointCount() {
    return this.traces.reduce((n, t) => n + t.y.length, 0);
  }

  schedule() {
    if (this.dirty) return;
    this.dirty = true;
    const wait = Math.max(0, REDRAW_MS - (performance.now() - this.lastDraw));
    setTimeout(() => requestAnimationFrame(() => this.draw()), wait);
  }

  async draw() {
    if (this.inFlight) { setTimeout(() => this.draw(), REDRAW_MS); return; }
    this.dirty = false;
    this.inFlight = true;
    this.lastDraw = performance.now();
    const t0 = performance.now();
    try {
      const extension = { x: [], y: [] }, indices = [];
      let needFull = !this.drawn || this.view.smoothing > 0;
      this.traces.forEach((t, i) => {
        const xs = [], ys = [];
        for (const r of t.pending) {
          const y = r[t.key] === null || r[t.key] === undefined ? null : r[t.key];
          t.step.push(r.step); t.epoch.push(r.epoch); t.wall_time.push(r.wall_time); t.y.push(y);
          xs.push(r[this.view.x]); ys.push(y);
        }
        t.pending = [];
        if (t.y.length > MAX_POINTS) { thin(t, MAX_POINTS); needFull = true; }
        if (ys.includes(null)) needFull = true; // non-finite markers live in the full figure
        if (xs.length) { extension.x.push(xs); extension.y.push(ys); indices.push(i * 2); }
      });
      if (needFull) {
        await Plotly.react(this.div, this.figure(), this.layout(), { responsive: true, displaylogo: false });
        this.drawn = true;
      } else if (indices.length) {
        await Plotly.extendTraces(this.div, extension, indices, MAX_POINTS);
      }
    } finally {
      this.inFlight = false;
      // For bench/page.py: every redraw's duration, when the last one ended, when data first showed.
      window.synthgradRedraws = window.synthgradRedraws || [];
      window.synthgradRedraws.push(performance.now() - t0);
      window.synthgradLastDraw = performance.now();
      if (window.synthgradFirstChart === undefined && this.pointCount() > 0) {
        window.synthgradFirstChart = window.synthgradLastDraw;
      }
    }
  }

  figure() {
    const data = [];
    const s = this.view.smoothing;
    for (const t of this.traces) {
      const xs = t[this.view.x];
      const ys = s > 0 ? smooth(xs, t.y, s) : t.y;
      data.push({ x: xs.slice(), y: ys.slice(), name: t.name, type: "scatter", mode: "lines",
                  line: { width: 2 }, legendgroup: t.name, yaxis: t.key.startsWith("update_ratio") ? "y2" : "y" });
      // Raw line faint behind the smoothed one; non-finite values as markers on the axis.
      const bad = t.y.map((v, i) => (v === null ? i : -1)).filter((i) => i >= 0);
      data.push({ x: s > 0 ? xs.slice() : bad.map((i) => xs[i]), y: s > 0 ? t.y.slice() : bad.map(() => 0),
                  name: s > 0 ? `${t.name} (raw)` : `${t.name}: non-finite`, type: "scatter",
                  mode: s > 0 ? "lines" : "markers", opacity: s > 0 ? 0.25 : 1,
                  marker: { symbol: "x", size: 9, color: cssVar("--bad") }, showlegend: false,
                  legendgroup: t.name, hoverinfo: s > 0 ? "skip" : "x+name" });
    }
    return data;
  }

  layout() {
    const fg = cssVar("--fg"), grid = cssVar("--grid");
    const xTitle = { step: "step", epoch: "epoch", wall_time: "training time (s)" }[this.view.x];
    const yType = this.view.log ? "log" : "linear";
    const layout = {
      title: { text: this.spec.title, font: { size: 14 } }, height: 300,
      margin: { l: 55, r: 55, t: 40, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: fg }, xaxis: { title: { text: xTitle }, gridcolor: grid },
      yaxis: { type: yType, gridcolor: grid }, legend: { orientation: "h", y: -0.25 },
      uirevision: `${this.view.x}-${this.view.log}`,
    };
    if (this.spec.id === "weights") {
      layout.yaxis2 = { overlaying: "y", side: "right", type: "log", title: { text: "update ratio" }, showgrid: false };
    }
    return layout;
  }

  redrawAll() {
    this.drawn = false;
    this.schedule();
  }
}

// A websocket to one run that reconnects with ?after=<seq> and never shows a gap.
class RunStream {
  constructor(runId, handlers) {
    this.runId = runId;
    this.handlers = handlers; // onSnapshot(msg), onMetrics(records, msg), onStatus(msg), onConnection(state)
    this.seq = null;
    this.closedForGood = false;
    this.retry = 500;
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = this.seq === null ? "" : `?after=${this.seq}`;
    const ws = new WebSocket(`${scheme}://${location.host}/ws/runs/${encodeURIComponent(this.runId)}${after}`);
    this.ws = ws;
    ws.onopen = () => { this.retry = 500; this.handlers.onConnection?.("live"); };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "snapshot") { this.seq = msg.seq; this.handlers.onSnapshot?.(msg); }
      else if (msg.type === "metrics") { this.seq = msg.seq; this.handlers.onMetrics?.(msg.records, msg); }
      else if (msg.type === "status") {
        this.handlers.onStatus?.(msg);
        if (["finished", "stopped", "diverged", "failed", "interrupted"].includes(msg.status)) this.closedForGood = true;
      }
    };
    ws.onclose = (event) => {
      if (this.closedForGood || event.code === 1000 || event.code === 1008) {
        this.handlers.onConnection?.("closed");
        return;
      }
      this.handlers.onConnection?.("reconnecting");
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
  }
}

// Wire the shared chart controls (smoothing, log, x axis, layer) to a list of charts.
function bindControls(view, charts, layers) {
  const select = document.getElementById("layer");
  for (const l of layers) {
    const opt = document.createElement("option");
    opt.value = String(l); opt.textContent = `hidden ${l}`;
    select.appendChild(opt);
  }
  document.getElementById("smoothing").addEventListener("input", (e) => {
    view.smoothing = Number(e.target.value); charts().forEach((c) => c.redrawAll());
  });
  document.getElementById("log-scale").addEventListener("change", (e) => {
    view.log = e.target.checked; charts().forEach((c) => c.redrawAll());
  });
  document.getElementById("x-axis").addEventListener("change", (e) => {
    view.x = e.target.value; charts().forEach((c) => c.redrawAll());
  });
  return select;
}

function formatNumber(v, digits = 4) {
  return v === null || v === undefined ? "–" : Number(v).toPrecision(digits);
}

window.synthgrad = { CHARTS, LiveChart, RunStream, bindControls, formatNumber, smooth };
