// What the server says about records and statuses (templates/base.html embeds it), read once.
const data = JSON.parse(document.getElementById("vocabulary").textContent);

export const TERMINAL = new Set(data.statuses.terminal); // a run that will never change again
export const ACTIVE = new Set(data.statuses.active);
export const HIDDEN_FIELDS = data.record_keys.hidden; // record keys `${field}_h${i}`
export const LAYER_FIELDS = data.record_keys.layer; // record keys `${field}_l${i}`
export const hiddenKey = (field, layer) => `${field}_h${layer}`;
export const layerKey = (field, layer) => `${field}_l${layer}`;
// Websocket close codes (app/messages.py CloseCode): after any of them, do not reconnect.
export const CLOSE_CODES = data.close_codes;
export const FINAL_CLOSE_CODES = new Set(Object.values(data.close_codes));
// The rules whose hidden layers learn from synthetic-gradient modules (dni, cdni).
const WITH_MODULES = new Set(data.methods_with_modules);
export const usesModules = (method) => WITH_MODULES.has(method);
// A run whose layers work unlocked, each stage on its own worker (a pipelined dni or cdni).
export const unlocked = (config) => config.execution === "pipelined" && usesModules(config.method);
// How many of a run's newest records keep their timelines in the history a page reads.
export const REPLAY_TIMELINES = data.snapshot_timelines;
