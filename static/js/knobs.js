// "Turn the knobs while it trains": the owner changes learning rates, update probability or
// sg_scale of a live run in place (PATCH /api/runs/{id}/config); the change is a marker on
// every chart from the next step on.

export function setupKnobs(run) {
  const form = document.getElementById("knobs-form");
  const status = document.getElementById("knobs-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll("[data-error-for]")) el.textContent = "";
    const changes = {};
    for (const el of form.querySelectorAll("[data-default]")) {
      if (el.value !== el.dataset.default) changes[el.name] = Number(el.value);
    }
    if (Object.keys(changes).length === 0) { status.textContent = "Nothing changed."; return; }
    const response = await fetch(`/api/runs/${encodeURIComponent(run.id)}/config`, {
      method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify(changes),
    });
    const body = await response.json();
    if (!response.ok) {
      if (Array.isArray(body.detail)) {
        for (const error of body.detail) {
          const slot = form.querySelector(`[data-error-for="${CSS.escape(String(error.loc[error.loc.length - 1]))}"]`);
          if (slot) slot.textContent = error.msg;
        }
        status.textContent = "Not applied.";
      } else status.textContent = body.detail;
      return;
    }
    run.config = body.config;
    for (const el of form.querySelectorAll("[data-default]")) el.dataset.default = el.value;
    status.textContent = "Applied: the charts mark the step it took effect.";
  });
}
