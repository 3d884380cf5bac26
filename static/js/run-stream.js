// A websocket to one run that reconnects and never shows a gap. The full stream (records as
// they are) resumes with ?after=<seq>; the lean one (`{detail: "lean", layer}`: only what the
// run page draws, a few columnar frames a second) starts again from a fresh snapshot.
import { FINAL_CLOSE_CODES, TERMINAL } from "./vocabulary.js";

// A lean message's columns as records: one per row, holding the fields that row kept.
export function columnsToRecords(columns, after = -Infinity) {
  const rows = columns.step.map((step, i) => ({ step, epoch: columns.epoch[i], wall_time: columns.wall_time[i] }));
  for (const [field, [indices, values]] of Object.entries(columns.series)) {
    indices.forEach((row, k) => { rows[row][field] = values[k]; });
  }
  return rows.filter((r) => r.step > after);
}

export class RunStream {
  constructor(runId, handlers, options = {}) {
    this.runId = runId;
    this.handlers = handlers; // onSnapshot(msg), onMetrics(records, msg), onStatus(msg), onConnection(state)
    this.options = options; // {detail: "lean", layer} or nothing for the full stream
    this.seq = null;
    this.closedForGood = false;
    this.retry = 500;
    this.open();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams();
    if (this.options.detail === "lean") {
      params.set("detail", "lean");
      if (this.options.layer) params.set("layer", String(this.options.layer));
    } else if (this.seq !== null) params.set("after", String(this.seq));
    const query = params.toString();
    return `${scheme}://${location.host}/ws/runs/${encodeURIComponent(this.runId)}${query ? `?${query}` : ""}`;
  }

  // The lean view of another layer: a new snapshot with that layer's fields.
  setLayer(layer) {
    if (this.options.detail !== "lean" || this.options.layer === layer) return;
    this.options.layer = layer;
    if (this.closedForGood) { this.closedForGood = false; this.open(); return; }
    this.reopen = true;
    this.ws.close();
  }

  receive(msg) {
    if (msg.type === "snapshot") {
      if (msg.detail === "lean") msg.history = columnsToRecords(msg.columns);
      this.seq = msg.seq;
      this.handlers.onSnapshot?.(msg);
    } else if (msg.type === "metrics" || msg.type === "frame") {
      // A lean frame may repeat rows a joiner's catch-up already held: keep only newer ones.
      const records = msg.type === "frame" ? columnsToRecords(msg.columns, this.seq ?? -Infinity) : msg.records;
      this.seq = Math.max(this.seq ?? msg.seq, msg.seq);
      if (records.length) this.handlers.onMetrics?.(records, msg);
    } else if (msg.type === "status") {
      if (TERMINAL.has(msg.status)) this.closedForGood = true;
      this.handlers.onStatus?.(msg);
    }
  }

  open() {
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => { this.retry = 500; this.handlers.onConnection?.("live"); };
    ws.onmessage = (event) => { if (ws === this.ws) this.receive(JSON.parse(event.data)); };
    ws.onclose = (event) => {
      if (ws !== this.ws) return;
      if (this.reopen) { this.reopen = false; this.open(); return; }
      // The run ended or was deleted, the socket was refused, or there is no such run.
      if (this.closedForGood || FINAL_CLOSE_CODES.has(event.code)) {
        this.handlers.onConnection?.("closed");
        return;
      }
      this.handlers.onConnection?.("reconnecting");
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, 5000);
    };
  }
}
