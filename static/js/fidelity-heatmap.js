// Hidden layers x steps, coloured by cosine(rule's signal, true gradient) on the diagram's
// scale: which interface is lying, and since when. Steps are binned into at most MAX_COLUMNS
// columns (the mean cosine of each bin), so a long run stays cheap to draw.
import { COSINE_SCALE } from "./diverging.js";
import { request, watch } from "./draw-scheduler.js";
import { CHART_CONFIG } from "./plotly-config.js";
import { hiddenKey } from "./vocabulary.js";

const MAX_COLUMNS = 300;
const MIN_REDRAW_MS = 3000; // a whole-run picture: every few seconds is enough

export class FidelityHeatmap {
  constructor(container, layers) {
    this.layers = layers;
    this.div = container;
    this.steps = [];
    this.values = layers.map(() => []); // per layer, one cosine (or null) per diagnostics record
    this.dirty = false;
    this.inFlight = false;
    this.lastDraw = 0;
    this.minRedrawMs = MIN_REDRAW_MS; // the scheduler waits this long between drawings
    watch(this, this.div);
  }

  reset() {
    this.steps = [];
    this.values = this.layers.map(() => []);
    this.schedule();
  }

  push(records) {
    const first = hiddenKey("cos", this.layers[0]);
    for (const r of records) {
      if (!(first in r)) continue; // not a diagnostics step
      this.steps.push(r.step);
      this.layers.forEach((l, i) => this.values[i].push(r[hiddenKey("cos", l)]));
    }
    this.schedule();
  }

  schedule() {
    this.dirty = true;
    request(this);
  }

  // Bins of steps: [first step, last step] and the mean cosine of each layer per bin.
  columns() {
    const n = this.steps.length;
    const bins = Math.min(n, MAX_COLUMNS);
    const x = [], z = this.layers.map(() => []);
    for (let b = 0; b < bins; b++) {
      const lo = Math.floor((b * n) / bins), hi = Math.floor(((b + 1) * n) / bins);
      x.push(this.steps[hi - 1]);
      this.values.forEach((series, i) => {
        let sum = 0, count = 0;
        for (let k = lo; k < hi; k++) if (series[k] !== null && series[k] !== undefined) { sum += series[k]; count++; }
        z[i].push(count ? sum / count : null);
      });
    }
    return { x, z };
  }

  async draw() {
    this.dirty = false;
    this.inFlight = true;
    this.lastDraw = performance.now();
    try {
      const { x, z } = this.columns();
      const fg = getComputedStyle(document.documentElement).getPropertyValue("--fg").trim();
      await Plotly.react(this.div, [{
        type: "heatmap", x, y: this.layers.map((l) => `hidden ${l}`), z, zmin: -1, zmax: 1,
        colorscale: COSINE_SCALE, hoverongaps: false,
        colorbar: { title: { text: "cosine" }, tickvals: [-1, 0, 1], ticktext: ["-1 opposite", "0 unrelated", "1 agrees"], thickness: 12 },
        hovertemplate: "%{y}, up to step %{x}: cosine %{z:.2f}<extra></extra>",
      }], {
        title: { text: "Fidelity heatmap (cosine)", font: { size: 14 }, x: 0, xref: "paper", xanchor: "left" },
        height: 120 + 36 * this.layers.length, margin: { l: 70, r: 20, t: 40, b: 40 },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: fg },
        xaxis: { title: { text: "step" }, automargin: true }, yaxis: { automargin: true, autorange: "reversed" },
      }, CHART_CONFIG);
      this.drawn = true;
    } finally {
      this.inFlight = false;
      if (this.dirty) request(this);
    }
  }
}
