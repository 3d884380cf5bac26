// When each part of the network worked, over the last few seconds: one lane per pipelined
// worker (or per layer of a sequential run, which works one layer at a time), a bar per
// piece of work. Light grey is recorded time; where a lane has no bar in it, it waited.
// Records carry their events (`timeline`) and the span those cover (`timeline_window`),
// so thinned live streams leave white gaps (not recorded), never false idle time.
import { request, watch } from "./draw-scheduler.js";
import { CHART_CONFIG } from "./plotly-config.js";
import { unlocked } from "./vocabulary.js";

const SPAN = 3; // seconds shown
const MAX_RECORDS = 30; // the newest records' events: a couple of hundred bars, cheap to draw
const MIN_REDRAW_MS = 2000; // its bars share the draw budget with the charts: every 2 s
const KINDS = {
  f: { name: "forward", color: "#4c78a8" },
  s: { name: "synthetic gradient", color: "#72b7b2" },
  b: { name: "backward pass", color: "#e45756" },
  u: { name: "update", color: "#54a24b" },
  x: { name: "update skipped", color: "#bab0ac" },
  m: { name: "module update", color: "#b279a2" },
};

export function laneNames(run) {
  const depth = (run.config.hidden || []).length + 1;
  const pipelined = unlocked(run.config);
  if (pipelined) return Array.from({ length: Math.min(run.config.workers, depth) }, (_, i) => `worker ${i + 1}`);
  const layers = Array.from({ length: depth }, (_, i) => `layer ${i + 1}`);
  return [...layers, run.config.method === "backprop" ? "backward pass" : "rule, modules"];
}

export class Timeline {
  constructor(container, lanes, title) {
    this.div = container;
    this.lanes = lanes;
    this.title = title;
    this.events = [];
    this.windows = [];
    this.latest = 0;
    this.dirty = false;
    this.inFlight = false;
    this.lastDraw = 0;
    this.minRedrawMs = MIN_REDRAW_MS; // the scheduler waits this long between drawings
    this.emptyText = "Waiting for a step's timeline…"; // what an empty timeline says (the page sets it)
    watch(this, this.div);
  }

  reset() {
    this.events = []; this.windows = []; this.latest = 0;
    this.schedule();
  }

  push(records) {
    let added = false;
    for (const r of records) {
      if (!Array.isArray(r.timeline)) continue;
      for (const e of r.timeline) if (e[0] < this.lanes.length) this.events.push(e);
      if (Array.isArray(r.timeline_window)) {
        this.windows.push(r.timeline_window);
        this.latest = Math.max(this.latest, r.timeline_window[1]);
      }
      added = true;
    }
    if (!added) return;
    this.windows = this.windows.filter((w) => w[1] >= this.latest - SPAN).slice(-MAX_RECORDS);
    const from = this.windows.length ? this.windows[0][0] : this.latest - SPAN;
    this.events = this.events.filter((e) => e[3] >= from);
    this.schedule();
  }

  schedule() {
    this.dirty = true;
    request(this);
  }

  traces() {
    const y = (lane) => this.lanes[lane];
    const recorded = { type: "bar", orientation: "h", name: "recorded (no bar: waiting)", x: [], base: [], y: [],
      marker: { color: "rgba(128,128,128,0.18)" }, hoverinfo: "skip", width: 0.9 };
    const merged = []; // consecutive records' windows touch: one grey bar for each stretch
    for (const [start, end] of this.windows) {
      const last = merged[merged.length - 1];
      if (last && start - last[1] < 1e-4) last[1] = end; else merged.push([start, end]);
    }
    for (const [start, end] of merged) {
      this.lanes.forEach((_, lane) => { recorded.x.push(end - start); recorded.base.push(start); recorded.y.push(y(lane)); });
    }
    const byKind = {};
    for (const [lane, kind, start, end] of this.events) {
      if (kind === "w") continue; // waiting: the recorded background shows through
      const spec = KINDS[kind] || { name: kind, color: "#888" };
      const t = byKind[kind] ||= { type: "bar", orientation: "h", name: spec.name, x: [], base: [], y: [],
        marker: { color: spec.color }, width: 0.6,
        hovertemplate: `%{y}: ${spec.name}, %{x:.2~s}s<extra></extra>` };
      t.x.push(Math.max(end - start, 1e-6)); t.base.push(start); t.y.push(y(lane));
    }
    return [recorded, ...Object.values(byKind)];
  }

  async draw() {
    this.dirty = false;
    this.inFlight = true;
    this.lastDraw = performance.now();
    try {
      const css = getComputedStyle(document.documentElement);
      const fg = css.getPropertyValue("--fg").trim(), grid = css.getPropertyValue("--grid").trim();
      const empty = !this.events.length && !this.windows.length;
      await Plotly.react(this.div, this.traces(), {
        annotations: empty ? [{ text: this.emptyText, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }] : [],
        title: { text: this.title, font: { size: 14 }, x: 0, xref: "paper", xanchor: "left" },
        barmode: "overlay", bargap: 0.2,
        height: 150 + 34 * this.lanes.length, margin: { l: 100, r: 20, t: 40, b: 90 },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: fg },
        xaxis: { visible: !empty, ticksuffix: " s", gridcolor: grid, zeroline: false, range: [this.windows.length ? this.windows[0][0] : 0, this.latest || 1] },
        yaxis: { visible: !empty, automargin: true, autorange: "reversed", categoryorder: "array", categoryarray: this.lanes, gridcolor: grid },
        legend: { orientation: "h", y: -0.2, yanchor: "top" }, showlegend: true,
      }, CHART_CONFIG);
      this.drawn = true;
    } finally {
      this.inFlight = false;
      if (this.dirty) request(this);
    }
  }
}
