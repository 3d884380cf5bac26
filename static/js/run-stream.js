// A websocket to one run that reconnects with ?after=<seq> and never shows a gap.
import { FINAL_CLOSE_CODES, TERMINAL } from "./vocabulary.js";

export class RunStream {
  constructor(runId, handlers) {
    this.runId = runId;
    this.handlers = handlers; // onSnapshot(msg), onMetrics(records, msg), onStatus(msg), onConnection(state)
    this.seq = null;
    this.closedForGood = false;
    this.retry = 500;
    this.open();
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const after = this.seq === null ? "" : `?after=${this.seq}`;
    const ws = new WebSocket(`${scheme}://${location.host}/ws/runs/${encodeURIComponent(this.runId)}${after}`);
    this.ws = ws;
    ws.onopen = () => { this.retry = 500; this.handlers.onConnection?.("live"); };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "snapshot") { this.seq = msg.seq; this.handlers.onSnapshot?.(msg); }
      else if (msg.type === "metrics") { this.seq = msg.seq; this.handlers.onMetrics?.(msg.records, msg); }
      else if (msg.type === "status") {
        if (TERMINAL.has(msg.status)) this.closedForGood = true;
        this.handlers.onStatus?.(msg);
      }
    };
    ws.onclose = (event) => {
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
