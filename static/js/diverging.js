// The diverging colour scale of cosine(rule's signal, true gradient): -1 red, 0 grey, 1 blue.
// Shared by the network diagram, its legend and the fidelity heatmap.
export const COSINE_SCALE = [
  [0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#d9d9d9"], [0.75, "#67a9cf"], [1, "#2166ac"],
];

function hex(c) { return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)); }

// The colour of a cosine in [-1, 1]; null (no value yet) is drawn as a hatch elsewhere.
export function cosineColor(cos) {
  const t = Math.min(1, Math.max(0, (cos + 1) / 2));
  for (let i = 1; i < COSINE_SCALE.length; i++) {
    const [t1, c1] = COSINE_SCALE[i];
    if (t <= t1) {
      const [t0, c0] = COSINE_SCALE[i - 1];
      const f = (t - t0) / (t1 - t0);
      const [a, b] = [hex(c0), hex(c1)];
      return `rgb(${a.map((v, k) => Math.round(v + f * (b[k] - v))).join(",")})`;
    }
  }
  return COSINE_SCALE[COSINE_SCALE.length - 1][1];
}

// Words for a cosine, for tooltips and screen readers.
export function cosineWords(cos) {
  if (cos === null || cos === undefined) return "no value yet";
  if (cos > 0.9) return "agrees with the true gradient";
  if (cos > 0.5) return "roughly agrees";
  if (cos > 0.1) return "weakly related";
  if (cos > -0.1) return "unrelated: learning from noise";
  return "points against the true gradient";
}
