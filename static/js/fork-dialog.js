// "Fork": a dialog with the step to start from and the fields a branch may change, then the
// branch's page. Only changed fields are sent; a refused one shows its reason under it.

function value(el) {
  return el.dataset.kind === "int" || el.dataset.kind === "float" ? Number(el.value) : el.value;
}

// The step a fork starts from by default: a paused run's current one, a diverged run's
// last good one, any other run's last.
export function defaultStep(run) {
  return run.status === "diverged" ? Math.max(0, run.step - 1) : run.step;
}

export function setupFork(run) {
  const dialog = document.getElementById("fork-dialog");
  const form = document.getElementById("fork-form");
  const failure = document.getElementById("fork-error");
  const stepInput = document.getElementById("fork-step-input");
  const showStep = () => {
    for (const id of ["fork-step", "fork-submit-step"]) {
      document.getElementById(id).textContent = stepInput.value === "" ? "…" : stepInput.value;
    }
  };
  stepInput.addEventListener("input", showStep);

  // Open the dialog at `step` (default: defaultStep), with fields set to `changes`.
  async function open(step = null, changes = {}) {
    // The run's step from the server: the page may not have every record.
    const response = await fetch(`/api/runs/${encodeURIComponent(run.id)}`);
    if (response.ok) Object.assign(run, await response.json());
    const last = defaultStep(run);
    stepInput.max = String(last);
    stepInput.value = String(step ?? last);
    for (const el of form.querySelectorAll("[data-default]")) {
      el.value = el.name in changes ? String(changes[el.name]) : el.dataset.default;
    }
    showStep();
    dialog.showModal();
  }
  document.getElementById("fork-button").addEventListener("click", () => open());
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll("[data-error-for]")) el.textContent = "";
    failure.hidden = true;
    const config = {};
    for (const el of form.querySelectorAll("[data-default]")) {
      if (el.value !== el.dataset.default) config[el.name] = value(el);
    }
    const name = form.elements.name.value.trim();
    const body = { ...(name ? { name } : {}), config };
    if (stepInput.value !== "") body.step = Number(stepInput.value);
    const response = await fetch(`/api/runs/${encodeURIComponent(run.id)}/fork`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (response.ok) { location.href = `/runs/${encodeURIComponent(answer.id)}`; return; }
    if (Array.isArray(answer.detail)) {
      for (const error of answer.detail) {
        const field = error.loc[error.loc.length - 1];
        const slot = form.querySelector(`[data-error-for="${CSS.escape(String(field))}"]`);
        if (slot) slot.textContent = error.msg;
        else { failure.hidden = false; failure.textContent = `${field}: ${error.msg}`; }
      }
    } else {
      failure.hidden = false;
      failure.textContent = answer.detail;
    }
  });
  return { open };
}

// The step of the record nearest to `x` on the charts' x axis (`key`: step, epoch or
// wall_time), or null.
export function nearestStep(records, key, x) {
  let best = null;
  for (const r of records) {
    if (r[key] == null) continue;
    if (best === null || Math.abs(r[key] - x) < Math.abs(best[key] - x)) best = r;
  }
  return best === null ? null : best.step;
}

// What a diverged run's rescue fork changes: half the learning rate, and half the
// modules' too when a module's loss is what ran away.
export function rescueChanges(run) {
  const changes = { learning_rate: run.config.learning_rate / 2 };
  const why = (run.summary || {}).divergence;
  const figure = why && why.ran_away ? why.ran_away.figure : "";
  if (figure.startsWith("module_loss_h") && run.config.sg_learning_rate) {
    changes.sg_learning_rate = run.config.sg_learning_rate / 2;
  }
  return changes;
}
