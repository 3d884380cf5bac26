// One live figure: traces keyed by (run, record key); points arrive in batches and
// redraws are shared out by one scheduler, so the page never spends a frame on more
// than one chart and never on a chart that is off screen.
import { CHART_CONFIG, PALETTE } from "./plotly-config.js";

const MAX_POINTS = 5000; // per trace; older points are thinned by min/max buckets
const MIN_REDRAW_MS = 250; // a chart redraws at most 4 times a second on a live run
// The legend entry of points with no value: a cosine with a zero signal (a DNI module's
// first prediction is exactly zero), or a number that overflowed (a diverging run).
export const UNDEFINED = "no value (zero signal or not finite)";


function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// Exponential moving average that accounts for uneven spacing (weight s per median step).
export function smooth(xs, ys, s) {
  if (!s || ys.length === 0) return ys;
  const gaps = [];
  for (let i = 1; i < xs.length && gaps.length < 100; i++) gaps.push(xs[i] - xs[i - 1]);
  gaps.sort((a, b) => a - b);
  const unit = gaps.length ? gaps[gaps.length >> 1] || 1 : 1;
  const out = new Array(ys.length);
  let value = null, lastX = null;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null || !Number.isFinite(y)) { out[i] = null; continue; }
    const decay = lastX === null ? 0 : Math.pow(s, (xs[i] - lastX) / unit);
    value = value === null ? y : decay * value + (1 - decay) * y;
    lastX = xs[i];
    out[i] = value;
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

// The y range that the first epoch's spike (or one outlier) must not set: the range of
// everything after the first epoch (or after the first 5% of points in a one-epoch run).
export function robustRange(traces) {
  let lo = Infinity, hi = -Infinity;
  for (const t of traces) {
    const lastEpoch = t.epoch.length ? t.epoch[t.epoch.length - 1] : 0;
    const skip = lastEpoch > 1.5 ? t.epoch.findIndex((e) => e > 1) : Math.ceil(t.y.length * 0.05);
    for (let i = Math.max(skip, 0); i < t.y.length; i++) {
      const v = t.y[i];
      if (v === null || !Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!Number.isFinite(lo)) return null;
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  return [Math.max(0, lo - pad), hi + pad];
}

// The scheduler: one chart per animation frame, each at most every MIN_REDRAW_MS, and all
// of them together within DRAW_BUDGET of the main thread's time over the last second:
// a Plotly redraw costs 30-50 ms on a loaded 2-core machine, so a page redrawing five
// charts as often as data arrives spends most of its time in long tasks (bench/page.py).
const DRAW_BUDGET = 0.2;
const recent = []; // [end time, duration] of the redraws of the last second
const queue = new Set();
let frameRequested = false;
// A chart here is anything with `visible`, `inFlight`, `lastDraw`, `dirty` and `draw()`.
export function request(chart) {
  queue.add(chart);
  if (!frameRequested) { frameRequested = true; requestAnimationFrame(tick); }
}
function spent(now) {
  while (recent.length && now - recent[0][0] > 1000) recent.shift();
  return recent.reduce((sum, [, d]) => sum + d, 0);
}
async function tick() {
  frameRequested = false;
  const now = performance.now();
  let next = null;
  const withinBudget = spent(now) < DRAW_BUDGET * 1000;
  for (const chart of queue) {
    if (!chart.visible || chart.inFlight) continue;
    // A chart's first drawing is never held back: a page should fill at once.
    // A chart may ask for a longer pause between drawings (`minRedrawMs`: whole-run pictures).
    const pause = Math.max(MIN_REDRAW_MS, chart.minRedrawMs || 0);
    if (chart.drawn && (!withinBudget || now - chart.lastDraw < pause)) continue;
    if (next === null || !chart.drawn || chart.lastDraw < next.lastDraw) next = chart;
    if (!chart.drawn) break;
  }
  if (next) {
    queue.delete(next);
    const t0 = performance.now();
    await next.draw();
    recent.push([performance.now(), performance.now() - t0]);
  }
  if ([...queue].some((c) => c.visible)) {
    frameRequested = true;
    requestAnimationFrame(tick);
  }
}
const observer = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const chart = entry.target.synthgradChart;
    chart.visible = entry.isIntersecting;
    if (chart.visible && chart.dirty) request(chart);
  }
}, { rootMargin: "200px" }) : null;

// Draw `chart` only while `element` is on screen (or near it).
export function watch(chart, element) {
  chart.visible = observer === null;
  element.synthgradChart = chart;
  observer?.observe(element);
}

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
    watch(this, this.div);
  }

  // `style`: an optional {color, dash} (the compare page colours by run, dashes by statistic).
  addTrace(run, key, name, axis = "y", style = {}) {
    this.traces.push({ run, key, name, axis, style, step: [], epoch: [], wall_time: [], y: [], received: 0, pending: [] });
  }

  push(runId, records) {
    for (const t of this.traces) {
      if (t.run !== runId) continue;
      for (const r of records) if (t.key in r) t.pending.push(r);
    }
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
      if (needFull || rangeMoved || (range === null) !== (this.range === null)) {
        this.range = range;
        await Plotly.react(this.div, this.figure(), this.layout(), CHART_CONFIG);
        this.drawn = true;
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
    if (this.range) parts.push("y axis fitted after the first epoch (tick “show early spikes” to see all)");
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
      title: { text: this.title(), font: { size: 14 } }, height: this.large() ? this.div.clientHeight : 320,
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
    layout.title.y = 0.98; layout.title.yanchor = "top"; layout.margin.t = 70;
    return layout;
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

export function escapeText(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// A "?" control that shows a few plain sentences about what a chart measures.
export function addHelp(card, id, title, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "help-toggle";
  button.textContent = "?";
  button.setAttribute("aria-label", `What is this? ${title}`);
  button.setAttribute("aria-expanded", "false");
  const help = document.createElement("p");
  help.className = "help-text";
  help.id = `help-${id}`;
  help.hidden = true;
  help.textContent = text;
  button.setAttribute("aria-controls", help.id);
  button.addEventListener("click", () => {
    help.hidden = !help.hidden;
    button.setAttribute("aria-expanded", String(!help.hidden));
  });
  tools(card).append(button);
  card.append(help);
}

// The row of small controls at the top of a chart card ("Show large", "?").
export function tools(card) {
  let row = card.querySelector(":scope > .card-tools");
  if (!row) {
    row = document.createElement("div");
    row.className = "card-tools";
    card.prepend(row);
  }
  return row;
}
