// The runs page: a live table of runs, compare selection, and the new-run form with presets.
import { formatNumber } from "./controls.js";

{
  const tbody = document.querySelector("#runs-table tbody");
  const compareButton = document.getElementById("compare-button");
  const selected = new Set();

  function cell(row, text) {
    const td = row.insertCell();
    td.textContent = text; // user text is always text, never HTML
    return td;
  }

  async function refresh() {
    const runs = await (await fetch("/api/runs")).json();
    tbody.replaceChildren();
    document.getElementById("no-runs").hidden = runs.length > 0;
    for (const run of runs) {
      const row = tbody.insertRow();
      row.dataset.runId = run.id;
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = selected.has(run.id);
      box.setAttribute("aria-label", `select ${run.name}`);
      box.addEventListener("change", () => {
        if (box.checked) selected.add(run.id); else selected.delete(run.id);
        compareButton.disabled = selected.size < 2;
      });
      row.insertCell().appendChild(box);
      const link = document.createElement("a");
      link.href = `/runs/${encodeURIComponent(run.id)}`;
      link.textContent = run.name;
      row.insertCell().appendChild(link);
      cell(row, run.config.method);
      cell(row, run.config.dataset);
      cell(row, run.status).className = `status status-${run.status}`;
      cell(row, `${run.total_steps ? Math.round((100 * run.step) / run.total_steps) : 0}%`);
      cell(row, formatNumber(run.summary.loss));
      cell(row, formatNumber(run.summary.accuracy, 3));
      cell(row, new Date(run.created_at * 1000).toLocaleString());
    }
  }
  compareButton.addEventListener("click", () => {
    location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(",")}`;
  });
  refresh();
  setInterval(refresh, 2000);

  // The form: presets fill it, the server validates, 422s land next to their field.
  const form = document.getElementById("new-run");
  const PRESETS = {
    "article-backprop": [{ dataset: "addition", bits: 8, method: "backprop", name: "The article's task: backprop" }],
    "article-dni": [{ dataset: "addition", bits: 8, method: "dni", name: "The article's task: DNI" }],
    "article-cdni": [{ dataset: "addition", bits: 8, method: "cdni", name: "The article's task: cDNI" }],
    "digits-all": ["backprop", "dni", "cdni", "feedback_alignment"].map((method) => (
      { dataset: "digits", method, name: `Digits: ${method}` })),
  };
  let pendingBatch = null;

  function fill(values) {
    form.reset();
    for (const [key, value] of Object.entries(values)) {
      const input = form.elements.namedItem(key);
      if (input) input.value = Array.isArray(value) ? value.join(",") : value;
    }
  }
  for (const button of document.querySelectorAll("[data-preset]")) {
    button.addEventListener("click", () => {
      const runs = PRESETS[button.dataset.preset];
      fill(runs[0]);
      pendingBatch = runs.length > 1 ? runs : null;
    });
  }
  form.elements.namedItem("dataset").addEventListener("change", () => { pendingBatch = null; });

  function readForm() {
    const config = {};
    let name = null;
    for (const input of form.elements) {
      if (!input.name || input.value === "") continue;
      if (input.name === "name") { name = input.value; continue; }
      const kind = input.dataset.kind;
      if (kind === "widths") config[input.name] = input.value.split(",").map((v) => Number(v.trim()));
      else if (kind === "int" || kind === "float") config[input.name] = Number(input.value);
      else config[input.name] = input.value;
    }
    return { name, config };
  }

  function showErrors(detail) {
    for (const el of form.querySelectorAll(".error")) el.textContent = "";
    const general = document.getElementById("form-error");
    if (!Array.isArray(detail)) { general.textContent = String(detail); return; }
    for (const error of detail) {
      const loc = error.loc || [];
      const field = loc[0] === "body" && loc[1] === "config" ? loc[2] : loc[1];
      const slot = form.querySelector(`[data-error-for="${CSS.escape(String(field))}"]`);
      if (slot) slot.textContent = error.msg; else general.textContent = `${loc.join(".")}: ${error.msg}`;
    }
  }

  async function create(body) {
    const response = await fetch("/api/runs", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) { showErrors(data.detail); return null; }
    return data;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = readForm();
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
}
