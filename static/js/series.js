// A trace's numbers: exponential smoothing, min/max thinning, a robust axis range.
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
export function thin(series, limit) {
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

// A value this many times the untrained network's (a trace's first finite value) is a
// blow-up, the engine's "exploded" rule: the axis keeps the history before it in view.
export const BLOWUP = 1000;

function blowupCeiling(traces) {
  let reference = Infinity;
  for (const t of traces) {
    const first = t.y.find((v) => v !== null && Number.isFinite(v));
    if (first !== undefined && Math.abs(first) > 0) reference = Math.min(reference, Math.abs(first));
  }
  return Number.isFinite(reference) ? reference * BLOWUP : Infinity;
}

// The y range that the first epoch's spike (or one outlier) must not set: the range of
// everything after the first epoch (or after the first 5% of points in a one-epoch run),
// leaving out a diverging run's blow-up. `offChart`: how many points lie above it.
export function robustRange(traces) {
  let lo = Infinity, hi = -Infinity, offChart = 0;
  const ceiling = blowupCeiling(traces);
  for (const t of traces) {
    const lastEpoch = t.epoch.length ? t.epoch[t.epoch.length - 1] : 0;
    const skip = lastEpoch > 1.5 ? t.epoch.findIndex((e) => e > 1) : Math.ceil(t.y.length * 0.05);
    for (let i = 0; i < t.y.length; i++) {
      const v = t.y[i];
      if (v === null || !Number.isFinite(v)) continue;
      if (v > ceiling) { offChart++; continue; }
      if (i < skip) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (!Number.isFinite(lo) || offChart) {
    // A blow-up: everything before it is the history to see, the first steps included.
    lo = Infinity; hi = -Infinity;
    for (const t of traces) for (const v of t.y) if (v !== null && Number.isFinite(v) && v <= ceiling) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  if (!Number.isFinite(lo)) return null;
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  const range = [Math.max(0, lo - pad), hi + pad];
  range.offChart = offChart;
  return range;
}
