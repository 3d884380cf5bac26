// Follow the presenter. The owner's page in presentation mode sends its view (the chart shown
// large, the layer, x axis, smoothing, log scale, the replay's place) over the run's presenter
// socket; every other page hears it, and one that follows mirrors it. A link with present=1
// follows by default; a "Follow the presenter" toggle lets go and comes back. The server takes
// views only from the owner, so a viewer never steers anyone.
import { expand } from "./presentation.js";

const CHECK_MS = 250; // how often the presenter's page looks for a change of its view
const REPLAY_RESEND_MS = 1000; // while a replay plays, its place goes out at most this often

// Set a control as a person would, so the page's own handlers do the rest.
function setControl(id, value, event) {
  const control = document.getElementById(id);
  if (!control) return;
  if (control.type === "checkbox") { if (control.checked === value) return; control.checked = value; }
  else { if (control.value === String(value)) return; control.value = String(value); }
  control.dispatchEvent(new Event(event, { bubbles: true }));
}

export class Presenter {
  // `page.view`: the page's view; `page.replay()`: its Replay or null; `page.canControl()`;
  // `page.startReplay()`: a Replay of the run's history (null while the run is live).
  constructor(runId, page) {
    this.runId = runId;
    this.page = page;
    this.following = page.view.present; // a present=1 link follows by default
    this.presenting = null; // the presenter's latest view while someone presents
    this.sent = "";
    this.sentAt = 0;
    this.retry = 500;
    this.toggle = this.buildToggle();
    this.open();
    setInterval(() => this.check(), CHECK_MS);
  }

  buildToggle() {
    const label = document.createElement("label");
    label.className = "follow-toggle";
    label.id = "follow-presenter";
    label.hidden = true;
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = "follow-box";
    box.checked = this.following;
    box.addEventListener("change", () => {
      this.following = box.checked;
      if (this.following && this.presenting) this.apply(this.presenting);
    });
    label.append(box, " Follow the presenter");
    document.getElementById("progress-text").after(label);
    return label;
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/runs/${encodeURIComponent(this.runId)}/presenter`);
    this.ws = ws;
    ws.onopen = () => { this.retry = 500; this.sent = ""; };
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (event.code === 4404 || event.code === 1008) return;
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }

  receive(msg) {
    if (msg.type !== "presenter") return;
    this.presenting = msg.presenting ? msg.view : null;
    // The presenter's own page needs no toggle; every other page offers one while someone presents.
    this.toggle.hidden = !this.presenting || this.isPresenting();
    if (this.presenting && this.following && !this.isPresenting()) this.apply(this.presenting);
  }

  isPresenting() { return this.page.canControl() && this.page.view.present; }

  // What this page shows, as the presenter socket carries it.
  current() {
    const v = this.page.view;
    const replay = this.page.replay();
    return { chart: v.chart || "", layer: v.layer, x: v.x, smoothing: v.smoothing, log: v.log,
             replay: replay ? replay.state() : null };
  }

  // The owner's page in presentation mode sends its view when it changes (a playing replay's
  // place at most once a second), and says so when it stops presenting.
  check() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.page.canControl()) return;
    const presenting = this.page.view.present;
    const view = presenting ? this.current() : null;
    const key = JSON.stringify({ ...view, replay: view?.replay ? { ...view.replay, step: 0 } : null });
    const now = performance.now();
    const moved = view?.replay?.playing && now - this.sentAt > REPLAY_RESEND_MS;
    if (key === this.sent && !moved) return;
    if (!presenting && this.sent === "") return; // never presented: nothing to take back
    this.ws.send(JSON.stringify({ presenting, view }));
    this.sent = presenting ? key : "";
    this.sentAt = now;
  }

  // Mirror the presenter's view through the page's own controls.
  apply(view) {
    setControl("layer", view.layer, "change");
    setControl("x-axis", view.x, "change");
    setControl("smoothing", view.smoothing, "input");
    setControl("log-scale", view.log, "change");
    const card = view.chart ? document.getElementById(`chart-${view.chart}`)?.closest(".chart-card") : null;
    const open = document.querySelector(".chart-card.expanded");
    if (card && !card.classList.contains("expanded")) expand(card, true, this.page.view);
    else if (!card && open) expand(open, false, this.page.view);
    const replay = view.replay ? this.page.replay() || this.page.startReplay() : null;
    if (replay) replay.follow(view.replay);
  }
}
