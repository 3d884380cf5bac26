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

const finite = (v) => v !== null && Number.isFinite(v);

function blowupCeiling(traces) {
  let reference = Infinity;
  for (const t of traces) {
    const first = t.y.find(finite);
    if (first !== undefined && Math.abs(first) > 0) reference = Math.min(reference, Math.abs(first));
  }
  return Number.isFinite(reference) ? reference * BLOWUP : Infinity;
}

// Beside a trace that did not blow up, one that did (a value above the ceiling) blew up
// from where it first passed this many times its own first value: from there on it does
// not set the axis, so its steps on the way (a loss of 800 on the way to 1e54) cannot
// flatten the other's. Alone, its climb stays in view.
export const BLOWUP_START = 10;

function blowupStart(t) {
  const first = t.y.find(finite);
  const i = t.y.findIndex((v) => finite(v) && v > Math.abs(first) * BLOWUP_START);
  return i < 0 ? t.y.length : i;
}

// The y range that the first epoch's spike (or one outlier) must not set: the range of
// everything after the first epoch (or after the first 5% of points in a one-epoch run),
// leaving out a diverging run's blow-up. `offChart`: how many points lie above it.
export function robustRange(traces) {
  const ceiling = blowupCeiling(traces);
  const blown = traces.map((t) => t.y.some((v) => finite(v) && v > ceiling));
  const blewUp = blown.some(Boolean);
  // a trace with values the blow-ups' climbs would flatten
  const beside = traces.some((t, k) => !blown[k] && t.y.some(finite));
  const ends = traces.map((t, k) => (blown[k] && beside ? blowupStart(t) : t.y.length));
  const span = (skipFirstEpoch) => {
    let lo = Infinity, hi = -Infinity;
    traces.forEach((t, k) => {
      const lastEpoch = t.epoch.length ? t.epoch[t.epoch.length - 1] : 0;
      const skip = !skipFirstEpoch ? 0 : lastEpoch > 1.5 ? t.epoch.findIndex((e) => e > 1) : Math.ceil(t.y.length * 0.05);
      for (let i = Math.max(skip, 0); i < ends[k]; i++) {
        const v = t.y[i];
        if (!finite(v) || v > ceiling) continue;
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    });
    return [lo, hi];
  };
  // A blow-up: everything before it is the history to see, the first steps included.
  let [lo, hi] = span(!blewUp);
  if (!Number.isFinite(lo)) [lo, hi] = span(false);
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1;
  const range = [Math.max(0, lo - pad), hi + pad];
  const above = (t) => t.y.filter((v) => finite(v) && v > range[1]).length;
  range.offChart = blewUp ? traces.reduce((n, t) => n + above(t), 0) : 0;
  return range;
}
