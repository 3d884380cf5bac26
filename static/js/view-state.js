// The view of a run or compare page (smoothing, log, early spikes, x axis, layer, the chart
// shown large, presentation mode) lives in the URL, so a copied link opens the same view.
const KEYS = { smoothing: Number, log: (v) => v === "1", fullRange: (v) => v === "1", x: String,
               layer: Number, chart: String, present: (v) => v === "1" };
const X_AXES = ["step", "epoch", "wall_time"];

export function readView() {
  const params = new URLSearchParams(location.search);
  const view = { smoothing: 0, log: false, fullRange: false, x: "step", layer: 1, chart: "", present: false };
  for (const [key, parse] of Object.entries(KEYS)) {
    const name = key === "fullRange" ? "full" : key;
    if (params.has(name)) view[key] = parse(params.get(name));
  }
  if (!X_AXES.includes(view.x)) view.x = "step";
  if (!(view.smoothing >= 0 && view.smoothing < 1)) view.smoothing = 0;
  if (!Number.isInteger(view.layer) || view.layer < 1) view.layer = 1;
  return view;
}

export function writeView(view) {
  const params = new URLSearchParams(location.search);
  const set = (name, value, fallback) => (value === fallback ? params.delete(name) : params.set(name, value));
  set("smoothing", String(view.smoothing), "0");
  set("log", view.log ? "1" : "0", "0");
  set("full", view.fullRange ? "1" : "0", "0");
  set("x", view.x, "step");
  set("layer", String(view.layer), "1");
  set("chart", view.chart || "", "");
  set("present", view.present ? "1" : "0", "0");
  const query = params.toString();
  history.replaceState(null, "", query ? `${location.pathname}?${query}` : location.pathname);
}
