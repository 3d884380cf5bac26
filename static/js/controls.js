// The shared view controls (smoothing, log, early spikes, x axis, layer), set from the view
// and writing it back to the URL, and number formatting.
import { writeView } from "./view-state.js";

export function bindControls(view, charts, layers) {
  const select = document.getElementById("layer");
  for (const l of layers) {
    const opt = document.createElement("option");
    opt.value = String(l); opt.textContent = `hidden ${l}`;
    select.appendChild(opt);
  }
  if (!layers.includes(view.layer)) view.layer = layers[0] ?? 1;
  select.value = String(view.layer);
  const smoothing = document.getElementById("smoothing");
  const log = document.getElementById("log-scale");
  const full = document.getElementById("full-range");
  const x = document.getElementById("x-axis");
  smoothing.value = String(view.smoothing); log.checked = view.log; full.checked = view.fullRange; x.value = view.x;
  const redraw = () => { writeView(view); charts().forEach((c) => c.redrawAll()); };
  smoothing.addEventListener("input", () => { view.smoothing = Number(smoothing.value); redraw(); });
  log.addEventListener("change", () => { view.log = log.checked; redraw(); });
  full.addEventListener("change", () => { view.fullRange = full.checked; redraw(); });
  x.addEventListener("change", () => { view.x = x.value; redraw(); });
  select.addEventListener("change", () => { view.layer = Number(select.value); writeView(view); });
  return select;
}

export function formatNumber(v, digits = 4) {
  return v === null || v === undefined ? "–" : Number(v).toPrecision(digits);
}
