// Who draws when: every live chart on a page asks this one scheduler for a redraw.
const MIN_REDRAW_MS = 250; // a chart redraws at most 4 times a second on a live run
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

// A chart whose box changed width (a card shown large, full screen, presentation mode, a
// column appearing) lays out again at once: Plotly measures its container only on a window
// resize. A live chart draws again (its height follows a large card); others resize.
const widths = new WeakMap();
const resized = "ResizeObserver" in window ? new ResizeObserver((entries) => {
  for (const entry of entries) {
    const element = entry.target, chart = element.synthgradChart;
    const width = Math.round(entry.contentRect.width), height = Math.round(entry.contentRect.height);
    const before = widths.get(element);
    widths.set(element, [width, height]);
    if (!before || (before[0] === width && (before[1] === height || !chart.large?.())) || width === 0) continue;
    if (chart.redrawAll) chart.redrawAll();
    else if (element.data) window.Plotly.Plots.resize(element);
  }
}) : null;

// Draw `chart` only while `element` is on screen (or near it).
export function watch(chart, element) {
  chart.visible = observer === null;
  element.synthgradChart = chart;
  observer?.observe(element);
  resized?.observe(element);
}
