// "Fork from here": a dialog with the fields a branch may change, then the branch's page.
// Only changed fields are sent; a refused one shows its reason under it.

function value(el) {
  return el.dataset.kind === "int" || el.dataset.kind === "float" ? Number(el.value) : el.value;
}

export function setupFork(run) {
  const dialog = document.getElementById("fork-dialog");
  const form = document.getElementById("fork-form");
  const failure = document.getElementById("fork-error");
  document.getElementById("fork-button").addEventListener("click", async () => {
    // The step the branch starts from: the server's, as the page may not have every record.
    const response = await fetch(`/api/runs/${encodeURIComponent(run.id)}`);
    if (response.ok) run.step = (await response.json()).step;
    document.getElementById("fork-step").textContent = run.step;
    dialog.showModal();
  });
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
    const response = await fetch(`/api/runs/${encodeURIComponent(run.id)}/fork`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ...(name ? { name } : {}), config }),
    });
    const body = await response.json();
    if (response.ok) { location.href = `/runs/${encodeURIComponent(body.id)}`; return; }
    if (Array.isArray(body.detail)) {
      for (const error of body.detail) {
        const field = error.loc[error.loc.length - 1];
        const slot = form.querySelector(`[data-error-for="${CSS.escape(String(field))}"]`);
        if (slot) slot.textContent = error.msg;
        else { failure.hidden = false; failure.textContent = `${field}: ${error.msg}`; }
      }
    } else {
      failure.hidden = false;
      failure.textContent = body.detail;
    }
  });
}
