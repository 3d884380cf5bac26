// Presentation mode (big type, nothing but title, status and charts), one chart shown large,
// keyboard shortcuts with their help, and a confirmation dialog for actions that cannot be undone.
import { tools } from "./chart-card.js";
import { writeView } from "./view-state.js";

const isTyping = (el) => el && (el.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName));

export function setupPresentation(view, { onSpace } = {}) {
  const button = document.getElementById("present-button");
  const apply = () => {
    document.body.classList.toggle("present", view.present);
    button.setAttribute("aria-pressed", String(view.present));
    button.textContent = view.present ? "Leave presentation mode" : "Presentation mode";
    resizeCharts();
  };
  const toggle = () => { view.present = !view.present; writeView(view); apply(); };
  button.addEventListener("click", toggle);
  apply();

  const dialog = document.getElementById("keys-dialog");
  document.getElementById("keys-button").addEventListener("click", () => dialog.showModal());
  dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    if (document.querySelector("dialog[open]")) return; // the dialog handles its own keys
    if (event.key === "Escape") {
      const open = document.querySelector(".chart-card.expanded");
      if (open) expand(open, false, view);
    } else if (event.key === "?") { event.preventDefault(); dialog.showModal(); }
    else if (event.key === "p") { event.preventDefault(); toggle(); }
    else if (event.key === "f") { event.preventDefault(); fullscreen(focusedCard(view)); }
    // Space pauses; in presentation mode whatever has focus (a presenter who clicked a
    // button), elsewhere it still presses a focused button.
    else if (event.key === " " && onSpace && (view.present || event.target.tagName !== "BUTTON")) {
      event.preventDefault();
      if (event.target.tagName === "BUTTON") event.target.blur(); // its keyup must not click it
      onSpace();
    }
  });
}

// The chart the keyboard is on, else the one shown large, else the first.
function focusedCard(view) {
  return document.activeElement?.closest?.(".chart-card") ||
    (view.chart && document.getElementById(`chart-${view.chart}`)?.closest(".chart-card")) ||
    document.querySelector(".chart-card");
}

function fullscreen(card) {
  if (!card) return;
  if (document.fullscreenElement) { document.exitFullscreen(); return; }
  if (card.requestFullscreen) card.requestFullscreen().then(resizeCharts, () => expand(card, true));
  else expand(card, true);
}

// Show one chart filling the window (and remember which in the URL), or put it back.
export function expand(card, on, view = null) {
  for (const other of document.querySelectorAll(".chart-card.expanded")) if (other !== card) other.classList.remove("expanded");
  card.classList.toggle("expanded", on);
  const toggle = card.querySelector(".expand-toggle");
  if (toggle) { toggle.setAttribute("aria-pressed", String(on)); toggle.textContent = on ? "Show smaller" : "Show large"; }
  if (view) { view.chart = on ? card.querySelector(".chart")?.id.replace(/^chart-/, "") || "" : ""; writeView(view); }
  resizeCharts();
}

// A "Show large" control on a chart card.
export function addExpand(card, view) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "expand-toggle";
  button.textContent = "Show large";
  button.setAttribute("aria-pressed", "false");
  button.addEventListener("click", () => expand(card, !card.classList.contains("expanded"), view));
  tools(card).prepend(button);
  return button;
}

// Charts whose size changed draw again (a large chart takes its card's height).
function resizeCharts() {
  requestAnimationFrame(() => {
    for (const div of document.querySelectorAll(".chart")) {
      if (div.synthgradChart?.redrawAll) div.synthgradChart.redrawAll();
      else if (div.data) Plotly.Plots.resize(div);
    }
  });
}
document.addEventListener("fullscreenchange", resizeCharts);

// A modal question before an action that cannot be undone; resolves to true to go ahead.
export function confirmAction(message, action) {
  const dialog = document.getElementById("confirm-dialog");
  dialog.querySelector(".confirm-message").textContent = message;
  const go = dialog.querySelector("[data-confirm]");
  go.textContent = action;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}
