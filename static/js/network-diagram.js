// The network as configured, drawn in SVG, with each hidden layer coloured by how well the
// signal it learns from agrees with the true gradient (cosine), live. For dni/cdni each
// hidden layer has its synthetic-gradient module beside it (the paper's Figure 1); for
// feedback alignment the error returns through fixed random matrices B.
import { cosineColor, cosineWords } from "./diverging.js";
import { formatNumber } from "./controls.js";
import { hiddenKey, layerKey } from "./vocabulary.js";

const NS = "http://www.w3.org/2000/svg";
const H = 250, TOP = 34, BAR = 46, GAP = 150;

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

// Height of a layer's box: grows with the log of its width, so 8 and 4096 both fit.
const height = (units) => 24 + 120 * Math.min(1, Math.log2(units + 1) / 12);

export class NetworkDiagram {
  constructor(figure, run, { inputs, outputs, onSelect }) {
    this.figure = figure;
    this.run = run;
    this.method = run.config.method;
    this.hidden = run.config.hidden;
    this.onSelect = onSelect;
    this.latest = {}; // record key -> latest value
    this.selected = 1;
    const sizes = [inputs, ...this.hidden, outputs];
    const width = GAP * (sizes.length - 1) + BAR + 40;
    this.svg = el("svg", { viewBox: `0 0 ${width} ${H}`, class: "network-svg", role: "group", "aria-label": "layers of the network" });
    this.layers = [];
    this.tooltip = document.createElement("div");
    this.tooltip.className = "diagram-tip";
    this.tooltip.hidden = true;
    this.tooltip.setAttribute("role", "status");
    this.draw(sizes);
    this.table = this.buildTable();
    figure.querySelector(".diagram-body").append(this.svg, this.tooltip);
    const hidden = document.createElement("div"); // a table cannot clip itself: wrap it
    hidden.className = "sr-only";
    hidden.append(this.table);
    figure.append(hidden);
  }

  x(i) { return 20 + i * GAP; }

  draw(sizes) {
    const mid = TOP + 70;
    const defs = el("defs");
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
    marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow-head" }));
    defs.append(marker);
    this.svg.append(defs);
    sizes.forEach((units, i) => {
      const h = height(units), x = this.x(i), y = mid - h / 2;
      const hiddenIndex = i > 0 && i < sizes.length - 1 ? i : null;
      const label = i === 0 ? "input" : hiddenIndex ? `hidden ${i}` : "output";
      if (i > 0) { // the forward connection from the layer below
        this.svg.append(el("line", { x1: this.x(i - 1) + BAR, y1: mid, x2: x - 2, y2: mid, class: "edge", "marker-end": "url(#arrow)" }));
        this.svg.append(el("text", { x: (this.x(i - 1) + BAR + x) / 2, y: mid - 6, class: "edge-label" }, `W${i}`));
      }
      const group = el("g", { class: hiddenIndex ? "layer hidden-layer" : "layer" });
      const rect = el("rect", { x, y, width: BAR, height: h, rx: 6, class: "layer-box" });
      group.append(rect, el("text", { x: x + BAR / 2, y: y - 8, class: "layer-label" }, label),
        el("text", { x: x + BAR / 2, y: y + h + 16, class: "layer-units" }, `${units}`));
      this.svg.append(group);
      if (hiddenIndex) this.addHidden(hiddenIndex, group, rect, x, y + h);
    });
    this.addFeedbackPath(sizes.length, mid);
  }

  addHidden(i, group, rect, x, bottom) {
    rect.classList.add("no-value");
    const entry = { index: i, group, rect };
    this.layers.push(entry);
    if (this.method === "dni" || this.method === "cdni") {
      // Module M_i below its layer: reads h_i (and the labels for cdni), sends back a synthetic gradient.
      const my = H - 44, mx = x + 4;
      this.svg.append(el("line", { x1: x + 14, y1: bottom + 22, x2: x + 14, y2: my, class: "edge module-edge", "marker-end": "url(#arrow)" }));
      this.svg.append(el("line", { x1: x + BAR - 14, y1: my, x2: x + BAR - 14, y2: bottom + 22, class: "edge sg-edge", "marker-end": "url(#arrow)" }));
      this.svg.append(el("rect", { x: mx, y: my, width: BAR - 8, height: 26, rx: 4, class: "module-box" }));
      this.svg.append(el("text", { x: x + BAR / 2, y: my + 17, class: "module-label" }, `M${i}`));
      this.svg.append(el("text", { x: x + BAR + 4, y: my - 8, class: "edge-label sg-label" }, "δ̂"));
      if (this.method === "cdni") {
        this.svg.append(el("line", { x1: mx - 30, y1: my + 13, x2: mx - 2, y2: my + 13, class: "edge label-edge", "marker-end": "url(#arrow)" }));
        this.svg.append(el("text", { x: mx - 34, y: my + 17, class: "edge-label label-text", "text-anchor": "end" }, "y"));
      }
    }
    group.setAttribute("tabindex", "0");
    group.setAttribute("role", "button");
    group.setAttribute("aria-label", `hidden layer ${i}: no value yet`);
    group.addEventListener("mouseenter", () => this.showTip(entry));
    group.addEventListener("focus", () => this.showTip(entry));
    group.addEventListener("mouseleave", () => { this.tooltip.hidden = true; });
    group.addEventListener("blur", () => { this.tooltip.hidden = true; });
    const select = () => { this.select(i); this.onSelect?.(i); };
    group.addEventListener("click", select);
    group.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(); } });
  }

  addFeedbackPath(n, mid) {
    if (this.method !== "feedback_alignment" && this.method !== "backprop") return;
    const y = TOP - 8, fa = this.method === "feedback_alignment";
    const path = el("path", { d: `M${this.x(n - 1) + BAR / 2},${mid - 40} L${this.x(n - 1) + BAR / 2},${y} L${this.x(1) + BAR / 2},${y} L${this.x(1) + BAR / 2},${mid - 40}`, class: fa ? "edge feedback-edge" : "edge backprop-edge", "marker-end": "url(#arrow)" });
    this.svg.append(path);
    this.svg.append(el("text", { x: (this.x(1) + this.x(n - 1)) / 2 + BAR / 2, y: y - 6, class: "edge-label" },
      fa ? "error back through fixed random B" : "true gradient back through Wᵀ (locked)"));
  }

  select(i) {
    this.selected = i;
    for (const layer of this.layers) layer.group.classList.toggle("selected", layer.index === i);
  }

  numbers(i) {
    const v = (field) => this.latest[hiddenKey(field, i)];
    return {
      cos: v("cos"), rel: v("rel_err"), ratio: v("norm_ratio"), module: v("module_loss"),
      update: this.latest[layerKey("update_ratio", i)],
    };
  }

  describe(i) {
    const n = this.numbers(i);
    const parts = [`hidden layer ${i}: cosine ${formatNumber(n.cos, 3)} (${cosineWords(n.cos)})`,
      `relative error ${formatNumber(n.rel, 3)}`, `norm ratio ${formatNumber(n.ratio, 3)}`];
    if (n.module !== undefined) parts.push(`module loss ${formatNumber(n.module, 3)}`);
    parts.push(`update ratio ${formatNumber(n.update, 3)}`);
    return parts.join(", ");
  }

  showTip(entry) {
    this.tooltip.hidden = false;
    this.tooltip.textContent = this.describe(entry.index);
  }

  buildTable() {
    const table = document.createElement("table");
    table.className = "diagram-table";
    table.createCaption().textContent = "Latest gradient fidelity per hidden layer";
    const head = table.createTHead().insertRow();
    for (const title of ["layer", "cosine", "relative error", "norm ratio", "module loss", "update ratio"]) {
      const th = document.createElement("th");
      th.scope = "col"; th.textContent = title; head.appendChild(th);
    }
    const body = table.createTBody();
    this.rows = this.layers.map((layer) => {
      const row = body.insertRow();
      row.insertCell().textContent = `hidden ${layer.index}`;
      for (let k = 0; k < 5; k++) row.insertCell();
      return row;
    });
    return table;
  }

  // New records: keep the latest value of every key; repaint at most a few times a second.
  update(records) {
    for (const r of records) for (const k in r) if (typeof r[k] === "number") this.latest[k] = r[k];
    if (this.pending) return;
    this.pending = setTimeout(() => { this.pending = null; this.paint(); }, 250);
  }

  paint() {
    for (const [k, layer] of this.layers.entries()) {
      const n = this.numbers(layer.index);
      const has = n.cos !== undefined && n.cos !== null;
      layer.rect.classList.toggle("no-value", !has);
      layer.rect.style.fill = has ? cosineColor(n.cos) : "";
      layer.rect.dataset.cos = has ? String(n.cos) : "";
      layer.group.setAttribute("aria-label", this.describe(layer.index));
      const values = [n.cos, n.rel, n.ratio, n.module, n.update];
      values.forEach((v, c) => { this.rows[k].cells[c + 1].textContent = formatNumber(v, 3); });
    }
  }
}
