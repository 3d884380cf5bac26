// One live figure: traces keyed by (run, record key); points arrive in batches and
// redraws are shared out by one scheduler (draw-scheduler.js), so the page never spends
// a frame on more than one chart and never on a chart that is off screen.
import { addHelp, escapeText } from "./chart-card.js";
import { request, watch } from "./draw-scheduler.js";
import { CHART_CONFIG, PALETTE } from "./plotly-config.js";
import { robustRange, smooth, thin } from "./series.js";

const MAX_POINTS = 5000; // per trace; older points are thinned by min/max buckets
// The legend entry of points with no value: a cosine with a zero signal (a DNI module's
// first prediction is exactly zero), or a number that overflowed (a diverging run).
export const UNDEFINED = "no value (zero signal or not finite)";


// A legend entry's text width in Plotly's default font, as the browser measures it.
const measure = document.createElement("canvas").getContext("2d");
function textWidth(text) {
  if (!measure) return 7 * text.length;
  measure.font = `12px "Open Sans", verdana, arial, sans-serif`;
  return measure.measureText(text).width;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Exponential moving average that accounts for uneven spacing (weight s per median step).

export class LiveChart {
  constructor(container, spec, view, layer) {
    this.spec = spec;
    this.view = view; // shared settings: smoothing, log, fullRange, x
    this.layer = layer;
    this.card = document.createElement("figure");
    this.card.className = "chart-card";
    this.div = document.createElement("div");
    this.div.className = "chart";
    this.div.id = `chart-${spec.id}`;
    this.note = document.createElement("figcaption");
    this.note.className = "chart-note";
    this.card.append(this.div, this.note);
    if (spec.help) addHelp(this.card, spec.id, spec.title, spec.help);
    container.appendChild(this.card);
    this.traces = []; // {run, key, name, axis, step:[], epoch:[], wall_time:[], y:[], received, pending:[]}
    this.dirty = false;
    this.inFlight = false;
    this.lastDraw = 0;
    this.drawn = false;
    this.range = null;
    this.markers = []; // {step, epoch, wall_time, text}: a fork, a knob changed
    this.markersMoved = false;
    watch(this, this.div);
  }

  // A vertical line with its text at `record`'s x (a record of the run, or its parent's).
  addMarker(record, text) {
    if (this.markers.some((m) => m.step === record.step && m.text === text)) return;
    this.markers.push({ step: record.step, epoch: record.epoch, wall_time: record.wall_time, text });
    this.markersMoved = true;
    this.schedule();
  }

  // `style`: an optional {color, colorIndex, dash, opacity, legend} (the compare page colours
  // by run and dashes by statistic; a branch's page dims its parent's history, no legend).
  addTrace(run, key, name, axis = "y", style = {}) {
    this.traces.push({ run, key, name, axis, style, step: [], epoch: [], wall_time: [], y: [], received: 0, pending: [] });
  }

  push(runId, records) {
    for (const t of this.traces) {
      if (t.run !== runId) continue;
      for (const r of records) if (t.key in r) t.pending.push(r);
    }
    // Live knob changes are records of the run's history: a marker with what changed.
    for (const r of records) if (r.config_change) this.addMarker(r, r.config_change);
    this.schedule();
  }

  reset(runId) {
    for (const t of this.traces) {
      if (t.run !== runId) continue;
      t.step = []; t.epoch = []; t.wall_time = []; t.y = []; t.pending = []; t.received = 0;
    }
    this.drawn = false;
    this.schedule();
  }

  pointCount() {
    return this.traces.reduce((n, t) => n + t.y.length, 0);
  }

  schedule() {
    this.dirty = true;
    request(this);
  }

  redrawAll() {
    this.drawn = false;
    this.schedule();
  }

  // Move pending records into the series; returns what extendTraces needs.
  absorb() {
    const extension = { x: [], y: [] }, indices = [];
    let needFull = !this.drawn || this.view.smoothing > 0;
    this.traces.forEach((t, i) => {
      const xs = [], ys = [];
      for (const r of t.pending) {
        const y = r[t.key] === undefined ? null : r[t.key];
        t.step.push(r.step); t.epoch.push(r.epoch); t.wall_time.push(r.wall_time); t.y.push(y);
        xs.push(r[this.view.x]); ys.push(y);
      }
      t.received += t.pending.length;
      t.pending = [];
      if (t.y.length > MAX_POINTS) { thin(t, MAX_POINTS); needFull = true; }
      if (ys.includes(null)) needFull = true; // non-finite markers live in the full figure
      if (xs.length) { extension.x.push(xs); extension.y.push(ys); indices.push(i); }
    });
    return { extension, indices, needFull };
  }

  async draw() {
    this.dirty = false;
    this.inFlight = true;
    this.lastDraw = performance.now();
    const t0 = performance.now();
    try {
      const { extension, indices, needFull } = this.absorb();
      const range = this.spec.axes.y.robust && !this.view.fullRange ? robustRange(this.traces) : null;
      const rangeMoved = range && (!this.range || range[1] > this.range[1] || range[1] < this.range[1] * 0.7);
      if (needFull || rangeMoved || this.markersMoved || (range === null) !== (this.range === null)) {
        this.range = range;
        this.markersMoved = false;
        await Plotly.react(this.div, this.figure(), this.layout(), CHART_CONFIG);
        this.drawn = true;
        this.fitLegend();
      } else if (indices.length) {
        await Plotly.extendTraces(this.div, extension, indices, MAX_POINTS);
      }
      this.showNote();
    } finally {
      this.inFlight = false;
      // For bench/page.py: every redraw's duration, when the last one ended, when data first showed.
      window.synthgradRedraws = window.synthgradRedraws || [];
      window.synthgradRedraws.push(performance.now() - t0);
      window.synthgradLastDraw = performance.now();
      if (window.synthgradFirstChart === undefined && this.pointCount() > 0) {
        window.synthgradFirstChart = window.synthgradLastDraw;
      }
      if (this.dirty) request(this);
    }
  }

  showNote() {
    const shown = Math.max(0, ...this.traces.map((t) => t.y.length));
    const received = Math.max(0, ...this.traces.map((t) => t.received));
    const total = Math.max(received, this.totalPoints ? this.totalPoints() : 0);
    const parts = [];
    if (shown < total) parts.push(`showing ${shown.toLocaleString()} of ${total.toLocaleString()} points`);
    if (this.range?.offChart) parts.push(`${this.range.offChart.toLocaleString()} points above the top: the values blew up (tick “show early spikes” to see all)`);
    else if (this.range) parts.push("y axis fitted after the first epoch (tick “show early spikes” to see all)");
    const meaning = this.spec.note?.(this.traces);
    if (meaning) parts.push(meaning);
    this.note.textContent = parts.join(" · ");
  }

  figure() {
    const data = [];
    const s = this.view.smoothing;
    const bad = { x: [], text: [] };
    this.traces.forEach((t, i) => {
      const xs = t[this.view.x];
      const ys = s > 0 ? smooth(xs, t.y, s) : t.y;
      // Names are text, never markup: Plotly renders pseudo-HTML in trace names.
      const name = escapeText(t.name);
      data.push({ x: xs.slice(), y: ys.slice(), name, type: "scatter", mode: "lines",
                  line: { width: 2, color: color(t, i), dash: t.style.dash || "solid" }, legendgroup: name,
                  opacity: t.style.opacity ?? 1, showlegend: t.style.legend !== false,
                  yaxis: t.axis === "y2" ? "y2" : "y" });
      t.y.forEach((v, j) => { if (v === null) { bad.x.push(xs[j]); bad.text.push(name); } });
    });
    if (s > 0) { // the raw lines, faint behind the smoothed ones
      this.traces.forEach((t, i) => {
        data.push({ x: t[this.view.x].slice(), y: t.y.slice(), type: "scatter", mode: "lines", opacity: 0.25,
                    showlegend: false, hoverinfo: "skip", legendgroup: data[i].legendgroup, yaxis: data[i].yaxis,
                    line: { width: 1, color: color(t, i) } });
      });
    }
    if (bad.x.length) {
      data.push({ x: bad.x, y: bad.x.map(() => 0.03), text: bad.text, yaxis: "y3", type: "scatter", mode: "markers",
                  name: UNDEFINED, marker: { symbol: "x", size: 9, color: cssVar("--bad") },
                  hovertemplate: "%{text}: no value at %{x} (zero signal, or not a finite number)<extra></extra>" });
    }
    return data;
  }

  // Markers as dotted vertical lines, their text written up along them (escaped: Plotly
  // renders pseudo-HTML in annotations).
  markerLayout(layout) {
    const x = this.view.x;
    const shown = this.markers.filter((m) => Number.isFinite(m[x]));
    layout.shapes = shown.map((m) => ({ type: "line", xref: "x", yref: "paper", x0: m[x], x1: m[x], y0: 0, y1: 1,
                                         line: { dash: "dot", width: 1.5, color: cssVar("--fg") } }));
    layout.annotations = shown.map((m) => ({ x: m[x], xref: "x", y: 1, yref: "paper", text: escapeText(m.text),
                                              showarrow: false, textangle: -90, xanchor: "right", yanchor: "top",
                                              font: { size: 11, color: cssVar("--fg") } }));
  }

  // Powers of ten between labelled ticks on a log axis, from the positive data it shows.
  decadeStep(name) {
    let lo = Infinity, hi = -Infinity;
    for (const t of this.traces) {
      if ((t.axis === "y2" ? "y2" : "y") !== name) continue;
      for (const v of t.y) if (v > 0 && Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    const decades = Number.isFinite(lo) ? Math.log10(hi / lo) : 1;
    return Math.max(1, Math.ceil(decades / 6));
  }

  axis(spec, name = "y") {
    const type = spec.positive && this.view.log ? "log" : spec.type;
    const axis = { title: { text: spec.title }, type, gridcolor: cssVar("--grid"), automargin: true,
                   zeroline: false };
    // Log axes: labelled ticks at powers of ten, written out (0.001, 1e-5), never Plotly's
    // small digit ticks or cut-off SI suffixes; at most ~6 of them however wide the range.
    if (type === "log") Object.assign(axis, { dtick: this.decadeStep(name), tickformat: "~g" });
    if (spec.range) { axis.range = spec.range; axis.autorange = false; }
    return axis;
  }

  layout() {
    const xTitle = { step: "step", epoch: "epoch", wall_time: "training time (s)" }[this.view.x];
    const axes = this.spec.axes;
    const layout = {
      // Shown large or full screen, the figure takes the height its card gives it.
      // The width too: Plotly.react keeps the width it first measured (draw-scheduler.js
      // redraws a chart whose box changed).
      title: { text: this.title(), font: { size: 14 }, x: 0, xref: "paper", xanchor: "left" }, height: this.large() ? this.div.clientHeight : 320,
      width: this.div.clientWidth || undefined,
      margin: { l: 60, r: axes.y2 ? 60 : 20, t: 40, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)", font: { color: cssVar("--fg") },
      xaxis: { title: { text: xTitle, standoff: 4 }, gridcolor: cssVar("--grid"), automargin: true },
      yaxis: this.axis(axes.y),
      yaxis3: { overlaying: "y", range: [0, 1], visible: false, fixedrange: true },
      legend: { orientation: "h", x: 0, y: 1.0, yanchor: "bottom", font: { size: 12 } },
      uirevision: `${this.view.x}-${this.view.log}-${this.view.fullRange}`,
    };
    if (this.range) { layout.yaxis.range = layout.yaxis.type === "log" ? this.range.map((v) => Math.log10(Math.max(v, 1e-12))) : this.range; layout.yaxis.autorange = false; }
    if (axes.y2) layout.yaxis2 = { ...this.axis(axes.y2, "y2"), overlaying: "y", side: "right", showgrid: false };
    this.markerLayout(layout);
    // The legend sits between the title and the plot: the top margin makes room for as many
    // rows as it wraps to, and the figure grows by as much, so the plot keeps its height.
    const rows = this.legendRows();
    const top = Math.max(48 + 22 * rows, this.legendTop || 0);
    layout.title.y = 0.98; layout.title.yanchor = "top"; layout.margin.t = top; this.topMargin = top;
    if (!this.large()) layout.height += top - 70;
    return layout;
  }

  // The legend as drawn: if it wrapped to more rows than estimated, it would reach the
  // title; the next drawing makes the room it took (the room only grows, so this settles).
  fitLegend() {
    const legend = this.div.querySelector(".legend");
    if (!legend || !legend.getBBox) return;
    const need = Math.ceil(36 + legend.getBBox().height);
    if (need > this.topMargin + 1) { this.legendTop = need; this.drawn = false; this.dirty = true; }
  }

  // How many rows the legend wraps to at this width.
  legendRows() {
    const names = this.traces.filter((t) => t.style.legend !== false).map((t) => t.name);
    if (this.traces.some((t) => t.y.includes(null))) names.push(UNDEFINED);
    const width = Math.max(200, (this.div.clientWidth || 600) - 70); // a legend may use the margins
    let rows = names.length ? 1 : 0, x = 0;
    for (const name of names) {
      const w = 46 + textWidth(name);
      if (x > 0 && x + w > width) { rows++; x = 0; }
      x += w;
    }
    return rows;
  }

  large() {
    return this.card.classList.contains("expanded") || document.fullscreenElement === this.card;
  }

  title() {
    if (this.compareLabel) return `${this.spec.title}: ${this.compareLabel()}`;
    const layer = this.layer ? this.layer() : null;
    const scope = this.spec.id === "fidelity" || this.spec.id === "module" ? `hidden layer ${layer}` :
      this.spec.id === "weights" ? `layer ${layer}` : "";
    return scope ? `${this.spec.title} (${scope})` : this.spec.title;
  }
}

export const color = (trace, i) => trace.style.color || PALETTE[(trace.style.colorIndex ?? i) % PALETTE.length];
