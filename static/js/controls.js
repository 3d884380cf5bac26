// The shared view controls (smoothing, log, x axis, layer) and number formatting.

export function bindControls(view, charts, layers) {
  const select = document.getElementById("layer");
  for (const l of layers) {
    const opt = document.createElement("option");
    opt.value = String(l); opt.textContent = `hidden ${l}`;
    select.appendChild(opt);
  }
  const redraw = () => charts().forEach((c) => c.redrawAll());
  document.getElementById("smoothing").addEventListener("input", (e) => { view.smoothing = Number(e.target.value); redraw(); });
  document.getElementById("log-scale").addEventListener("change", (e) => { view.log = e.target.checked; redraw(); });
  document.getElementById("full-range").addEventListener("change", (e) => { view.fullRange = e.target.checked; redraw(); });
  document.getElementById("x-axis").addEventListener("change", (e) => { view.x = e.target.value; redraw(); });
  return select;
}

export function formatNumber(v, digits = 4) {
  return v === null || v === undefined ? "–" : Number(v).toPrecision(digits);
}
