// The runs page: a live table of runs, compare selection, and the new-run form: presets,
// the dataset's own defaults, recipes in the URL, errors next to Start.
import { formatNumber } from "./controls.js";

const { defaults: DATASET_DEFAULTS, presets: PRESETS } = JSON.parse(document.getElementById("form-data").textContent);
const tbody = document.querySelector("#runs-table tbody");
const compareButton = document.getElementById("compare-button");
const selected = new Set();

function cell(row, text, label) {
  const td = row.insertCell();
  td.textContent = text; // user text is always text, never HTML
  td.dataset.label = label; // the phone layout shows it before the value
  return td;
}

function nameCell(row, href, text, note = "", depth = 0) {
  const link = document.createElement("a");
  link.href = href;
  link.textContent = text; // a name is text, never HTML
  const td = row.insertCell();
  td.className = "run-name";
  td.appendChild(link);
  if (note) {
    const small = document.createElement("small");
    small.className = "fork-note";
    small.textContent = note;
    td.append(small);
  }
  if (depth) td.style.paddingLeft = `${0.5 + 1.25 * Math.min(depth, 4)}em`;
}

// Runs in families: each branch right after its parent (indented), newest first within.
function families(runs) {
  const present = new Set(runs.map((r) => r.id));
  const children = new Map();
  for (const r of runs) {
    const parent = r.fork_of && present.has(r.fork_of.run) ? r.fork_of.run : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(r);
  }
  const out = [];
  const visit = (parent, depth) => {
    for (const r of children.get(parent) || []) { out.push([r, depth]); visit(r.id, depth + 1); }
  };
  visit(null, 0);
  return out;
}

async function refreshSweeps() {
  const sweeps = await (await fetch("/api/sweeps")).json();
  document.getElementById("sweeps-section").hidden = sweeps.length === 0;
  const body = document.querySelector("#sweeps-table tbody");
  body.replaceChildren();
  for (const sweep of sweeps) {
    const row = body.insertRow();
    nameCell(row, `/sweeps/${encodeURIComponent(sweep.id)}`, sweep.name);
    cell(row, Object.entries(sweep.grid).map(([f, v]) => `${f}: ${v.map(String).join(", ")}`).join(" × "), "Grid");
    cell(row, String(sweep.runs.length), "Runs");
    cell(row, sweep.status, "Status").className = `status status-${sweep.status}`;
    cell(row, new Date(sweep.created_at * 1000).toLocaleString(), "Created");
  }
  return sweeps;
}

// A sweep's runs fold under one row with their count; a click shows them (kept open).
const openSweeps = new Set();
function sweepRow(sweep, members) {
  const row = tbody.insertRow();
  row.className = "sweep-row";
  row.insertCell();
  const td = row.insertCell();
  td.className = "run-name";
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "fold-toggle";
  const open = openSweeps.has(sweep.id);
  toggle.setAttribute("aria-expanded", String(open));
  toggle.textContent = `${open ? "▾" : "▸"} ${members.length} runs`;
  toggle.setAttribute("aria-label", `${open ? "Hide" : "Show"} the ${members.length} runs of ${sweep.name}`);
  toggle.addEventListener("click", () => {
    if (openSweeps.has(sweep.id)) openSweeps.delete(sweep.id); else openSweeps.add(sweep.id);
    refresh();
  });
  const link = document.createElement("a");
  link.href = `/sweeps/${encodeURIComponent(sweep.id)}`;
  link.textContent = sweep.name;
  td.append(link, " ", toggle);
  cell(row, [...new Set(members.map((r) => r.config.method))].join(", "), "Rule");
  cell(row, [...new Set(members.map((r) => r.config.dataset))].join(", "), "Dataset");
  cell(row, sweep.status, "Status").className = `status status-${sweep.status}`;
  const steps = members.reduce((n, r) => n + r.step, 0), total = members.reduce((n, r) => n + (r.total_steps || 0), 0);
  cell(row, `${total ? Math.round((100 * steps) / total) : 0}%`, "Progress");
  cell(row, "", "Loss"); cell(row, "", "Accuracy");
  cell(row, new Date(sweep.created_at * 1000).toLocaleString(), "Created");
  return open;
}

function runRow(run, depth, byId, inSweep = false) {
  const row = tbody.insertRow();
  row.dataset.runId = run.id;
  if (inSweep) row.className = "sweep-member";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.checked = selected.has(run.id);
  box.setAttribute("aria-label", `select ${run.name} to compare`);
  box.addEventListener("change", () => {
    if (box.checked) selected.add(run.id); else selected.delete(run.id);
    compareButton.disabled = selected.size < 2;
  });
  row.insertCell().appendChild(box);
  const note = run.fork_of ? `fork of ${byId.get(run.fork_of.run)?.name ?? "a deleted run"} at step ${run.fork_of.step}` : "";
  nameCell(row, `/runs/${encodeURIComponent(run.id)}`, run.name, note, depth + (inSweep ? 1 : 0));
  cell(row, run.config.method, "Rule");
  cell(row, run.config.dataset, "Dataset");
  cell(row, run.status, "Status").className = `status status-${run.status}`;
  cell(row, `${run.total_steps ? Math.round((100 * run.step) / run.total_steps) : 0}%`, "Progress");
  cell(row, formatNumber(run.summary.loss), "Loss");
  cell(row, formatNumber(run.summary.accuracy, 3), "Accuracy");
  cell(row, new Date(run.created_at * 1000).toLocaleString(), "Created");
}

async function refresh() {
  const [sweeps, runs] = await Promise.all([refreshSweeps(), fetch("/api/runs").then((r) => r.json())]);
  document.getElementById("loading-runs").hidden = true;
  tbody.replaceChildren();
  document.getElementById("no-runs").hidden = runs.length > 0;
  document.getElementById("runs-table").hidden = runs.length === 0;
  const byId = new Map(runs.map((r) => [r.id, r]));
  const sweepOf = new Map(sweeps.flatMap((s) => s.runs.map((r) => [r.id, s])));
  const shown = new Set();
  for (const [run, depth] of families(runs)) {
    const sweep = sweepOf.get(run.id);
    if (!sweep) { runRow(run, depth, byId); continue; }
    if (shown.has(sweep.id)) continue; // its runs came with its first
    shown.add(sweep.id);
    const members = runs.filter((r) => sweepOf.get(r.id) === sweep);
    if (sweepRow(sweep, members)) for (const member of members) runRow(member, 0, byId, true);
  }
}
compareButton.addEventListener("click", () => {
  location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`;
});
refresh();
setInterval(refresh, 2000);

// -- the form ------------------------------------------------------------------
const form = document.getElementById("new-run");
const startButton = document.getElementById("start-button");
const presetNote = document.getElementById("preset-note");
const presetExpect = document.getElementById("preset-expect");
let pendingBatch = null; // a preset that starts several runs

const inputs = () => [...form.elements].filter((el) => el.name && !el.dataset.sweep);
const sweepMode = () => form.querySelector('[data-sweep="mode"]:checked').value === "sweep";
// In sweep mode the rules and seeds come from the sweep's fields, not the single ones.
function showMode() {
  const sweep = sweepMode();
  document.getElementById("sweep-fields").hidden = !sweep;
  for (const name of ["method", "seed"]) field(name).closest(".field").hidden = sweep;
  if (!pendingBatch) startButton.textContent = sweep ? "Start sweep" : "Start";
}
for (const radio of form.querySelectorAll('[data-sweep="mode"]')) radio.addEventListener("change", showMode);
const field = (name) => form.elements.namedItem(name);

// The dataset's own defaults, shown beside each field that depends on the dataset.
function showDatasetDefaults() {
  const values = DATASET_DEFAULTS[field("dataset").value] || {};
  // Fields of one dataset only (bits, the MNIST folder) show for that dataset alone.
  for (const box of form.querySelectorAll(".field[data-only]")) box.hidden = box.dataset.only !== field("dataset").value;
  for (const slot of form.querySelectorAll("[data-default-for]")) {
    const value = values[slot.dataset.defaultFor];
    slot.textContent = value === undefined ? "" : `; default for ${field("dataset").value}: ${value}`;
    const input = field(slot.dataset.defaultFor);
    if (input && input.tagName === "INPUT" && value !== undefined) input.placeholder = `default ${value}`;
  }
}

function fill(values) {
  for (const input of inputs()) {
    if (input.name in values) input.value = Array.isArray(values[input.name]) ? values[input.name].join(",") : values[input.name];
  }
  showDatasetDefaults();
}

function choosePreset(key) {
  const preset = PRESETS[key];
  form.reset();
  const { name, ...first } = preset.runs[0];
  fill(preset.runs.length > 1 ? { dataset: first.dataset } : { ...first, name });
  pendingBatch = preset.runs.length > 1 ? preset.runs : null;
  presetNote.hidden = !preset.note;
  presetNote.textContent = preset.note || "";
  presetExpect.hidden = !preset.expect;
  presetExpect.textContent = preset.expect ? `What to expect: ${preset.expect}` : "";
  startButton.textContent = pendingBatch ? `Start ${pendingBatch.length} runs` : "Start";
  syncQuery();
}
for (const button of document.querySelectorAll("[data-preset]")) {
  button.addEventListener("click", () => choosePreset(button.dataset.preset));
}

// What the form says, as the API's body: empty fields take the dataset's defaults.
function readForm() {
  const config = {};
  let name = null;
  for (const input of inputs()) {
    if (input.value === "" || input.closest(".field[data-only]")?.hidden) continue;
    if (input.name === "name") { name = input.value; continue; }
    const kind = input.dataset.kind;
    if (kind === "widths") config[input.name] = input.value.split(",").map((v) => Number(v.trim()));
    else if (kind === "int" || kind === "float") config[input.name] = Number(input.value);
    else config[input.name] = input.value;
  }
  return { name, config };
}

// -- recipes: the form's fields in the query string, both ways ----------------------
function recipeQuery() {
  const params = new URLSearchParams();
  for (const input of inputs()) {
    const always = input.name === "dataset" || input.name === "method";
    if (input.value !== "" && (always || input.value !== (input.dataset.default ?? ""))) params.set(input.name, input.value);
  }
  return params.toString();
}
function syncQuery() {
  history.replaceState(null, "", `${location.pathname}?${recipeQuery()}`);
}
function readQuery() {
  const params = new URLSearchParams(location.search);
  const values = {};
  for (const input of inputs()) if (params.has(input.name)) values[input.name] = params.get(input.name);
  if (values.dataset === undefined && params.size === 0) return;
  fill(values);
  if (Object.keys(values).some((k) => field(k)?.closest("details"))) form.querySelector("details.advanced").open = true;
}
form.addEventListener("input", () => syncQuery());
form.addEventListener("change", (event) => {
  if (event.target.name === "dataset") { showDatasetDefaults(); pendingBatch = null; presetNote.hidden = true; presetExpect.hidden = true; startButton.textContent = "Start"; }
  syncQuery();
});
document.getElementById("recipe-button").addEventListener("click", async (e) => {
  const link = `${location.origin}/?${recipeQuery()}`;
  try { await navigator.clipboard.writeText(link); e.target.textContent = "Recipe link copied"; }
  catch { window.prompt("Copy this recipe link:", link); }
});
showDatasetDefaults();
readQuery(); // a recipe link fills the form; it never starts a run by itself

// -- errors: at their fields and listed next to Start; focus goes to the first ---------
const errorBox = document.getElementById("form-errors");
const errorList = document.getElementById("form-error-list");
function labelOf(name) {
  return form.querySelector(`[data-field="${CSS.escape(name)}"] > label`)?.textContent || name;
}
function showErrors(detail) {
  for (const el of form.querySelectorAll(".error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  errorList.replaceChildren();
  const problems = Array.isArray(detail) ? detail : [{ loc: [], msg: String(detail) }];
  let first = null;
  for (const error of problems) {
    const loc = error.loc || [];
    const grid = loc[0] === "body" && loc[1] === "grid";
    const name = grid ? ({ method: "sweep-method", seed: "sweep-seed" }[loc[2]] || "sweep-extra")
      : String(loc[0] === "body" && loc[1] === "config" ? loc[2] : loc[1] ?? "");
    const input = !name ? null : (grid ? form.querySelector(`[data-field="${name}"] input`) : field(name));
    const item = document.createElement("li");
    item.textContent = input ? `${labelOf(name)}: ${error.msg}` : error.msg;
    errorList.appendChild(item);
    if (input) {
      form.querySelector(`[data-error-for="${CSS.escape(name)}"]`).textContent = error.msg;
      input.setAttribute("aria-invalid", "true");
      if (input.closest("details")) input.closest("details").open = true;
      first = first || input;
    }
  }
  document.getElementById("form-error-title").textContent = `The ${sweepMode() ? "sweep" : "run"} was not started:`;
  errorBox.hidden = false;
  (first || startButton).focus();
}

// The sweep's grid from its fields: rules, seeds, and at most one more field's values.
function readGrid() {
  const grid = { method: [...form.querySelectorAll('[data-sweep="method"]:checked')].map((b) => b.value) };
  grid.seed = document.getElementById("sweep-seeds").value.split(",").filter((v) => v.trim()).map((v) => Number(v.trim()));
  const extra = document.getElementById("sweep-extra-field");
  const text = document.getElementById("sweep-extra-values").value.trim();
  if (extra.value && text) {
    const kind = extra.selectedOptions[0].dataset.kind;
    grid[extra.value] = kind === "widths"
      ? text.split(";").map((w) => w.split(",").map((v) => Number(v.trim())))
      : text.split(",").map((v) => v.trim()).filter(Boolean).map((v) => (kind === "int" || kind === "float" ? Number(v) : v));
  }
  return grid;
}

async function create(body, url = "/api/runs") {
  const response = await fetch(url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) { showErrors(data.detail); return null; }
  return data;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.hidden = true;
  const body = readForm();
  if (sweepMode() && !pendingBatch) {
    delete body.config.method;
    delete body.config.seed;
    const sweep = await create({ ...body, grid: readGrid() }, "/api/sweeps");
    if (sweep) location.href = `/sweeps/${encodeURIComponent(sweep.id)}`;
    return;
  }
  if (pendingBatch) {
    const ids = [];
    for (const preset of pendingBatch) {
      const { name, ...config } = preset;
      const run = await create({ name, config: { ...body.config, ...config } });
      if (!run) return;
      ids.push(run.id);
    }
    location.href = `/compare?runs=${ids.join(",")}`;
    return;
  }
  const run = await create(body);
  if (run) location.href = `/runs/${encodeURIComponent(run.id)}`;
});
