// Replay a run that has ended from its stored history: the charts, diagram and heatmap start
// again at step 0 and grow at a chosen speed; pause, and scrub with the slider. Nothing trains:
// the page plays the history it already read (the same snapshot every viewer shares).
export const SPEEDS = { "1": "As trained", "2": "2x", "10": "10x", "60s": "In 60 s" };
const TICK_MS = 100;

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

export class Replay {
  // `sink`: reset() empties every picture, push(records) adds records to all of them.
  constructor(anchor, sink, { speed = "1", onChange = () => {} } = {}) {
    this.sink = sink;
    this.onChange = onChange; // told after every play, pause, seek or change of speed
    this.records = [];
    this.shown = 0; // records pushed so far
    this.time = 0; // position on the replay clock (training seconds, or steps)
    this.playing = false;
    this.timer = null;
    this.bar = el("section", { class: "replay-bar", id: "replay", "aria-label": "Replay" });
    const title = el("strong", { class: "replay-title" }, "Replay");
    this.button = el("button", { type: "button", id: "replay-play" }, "Play");
    const speedLabel = el("label", { for: "replay-speed" }, "Speed");
    this.speed = el("select", { id: "replay-speed" });
    for (const [value, name] of Object.entries(SPEEDS)) this.speed.append(new Option(name, value));
    const asked = String(speed).replace(/x$/, ""); // "10x" reads as "10"
    this.speed.value = SPEEDS[asked] ? asked : "1";
    this.slider = el("input", { type: "range", id: "replay-slider", min: "0", max: "0", step: "1", value: "0",
                                "aria-label": "Replay position (step)" });
    this.position = el("output", { id: "replay-step", for: "replay-slider" }, "step 0");
    this.bar.append(title, this.button, speedLabel, this.speed, this.slider, this.position);
    anchor.after(this.bar);
    this.button.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    this.speed.addEventListener("change", () => this.changed());
    this.slider.addEventListener("input", () => {
      const step = Number(this.slider.value); // before pause() puts the slider back
      this.pause();
      this.seek(step);
    });
  }

  // The history to play. `keepPlace`: a new history of the same run (another layer's fields).
  load(records, keepPlace = false) {
    const step = this.step();
    this.records = records.filter((r) => Number.isFinite(r.step));
    // Training time is the clock when it only moves forward; otherwise steps are.
    const times = this.records.map((r) => r.wall_time);
    this.byTime = times.length > 1 && times.every((t, i) => Number.isFinite(t) && (i === 0 || t >= times[i - 1]));
    const last = this.records[this.records.length - 1];
    this.slider.max = String(last ? last.step : 0);
    this.seek(keepPlace ? step : 0);
    return this;
  }

  clock(i) {
    if (i < 0) return 0;
    const r = this.records[i];
    return this.byTime ? r.wall_time : r.step;
  }

  // Replay-clock units per second of the viewer's time.
  rate() {
    const end = this.clock(this.records.length - 1);
    if (this.speed.value === "60s") return end / 60 || 1;
    return (this.byTime ? 1 : 1000) * Number(this.speed.value);
  }

  step() { return this.shown ? this.records[this.shown - 1].step : 0; }

  state() { return { step: this.step(), playing: this.playing, speed: this.speed.value }; }

  play() {
    if (!this.records.length) return;
    if (this.shown >= this.records.length) this.seek(0);
    this.playing = true;
    this.last = performance.now();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.changed();
  }

  pause() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.playing) { this.playing = false; this.changed(); }
  }

  tick() {
    const now = performance.now();
    this.time += ((now - this.last) / 1000) * this.rate();
    this.last = now;
    let end = this.shown;
    while (end < this.records.length && this.clock(end) <= this.time) end++;
    if (end > this.shown) { this.sink.push(this.records.slice(this.shown, end)); this.shown = end; }
    this.show();
    if (this.shown >= this.records.length) this.pause();
  }

  // Show the run as it was at `step`: the pictures start again and take the records up to it.
  seek(step) {
    let end = 0;
    while (end < this.records.length && this.records[end].step <= step) end++;
    this.sink.reset();
    if (end) this.sink.push(this.records.slice(0, end));
    this.shown = end;
    this.time = this.clock(end - 1);
    this.show();
    this.changed();
  }

  // Mirror a presenter's replay: their speed, play or pause, and their place when it drifted.
  follow(state) {
    if (!state || !this.records.length) return;
    if (SPEEDS[state.speed]) this.speed.value = state.speed;
    const total = Number(this.slider.max) || 1;
    if (!state.playing || Math.abs(state.step - this.step()) > total * 0.02) this.seek(state.step);
    if (state.playing && !this.playing) this.play();
    if (!state.playing && this.playing) this.pause();
  }

  show() {
    const step = this.step();
    this.slider.value = String(step);
    this.position.textContent = `step ${step.toLocaleString()} of ${Number(this.slider.max).toLocaleString()}`;
    this.button.textContent = this.playing ? "Pause" : this.shown >= this.records.length && this.shown ? "Play again" : "Play";
    this.button.setAttribute("aria-pressed", String(this.playing));
  }

  changed() {
    this.show();
    const params = new URLSearchParams(location.search);
    params.set("replay", "1");
    if (this.speed.value === "1") params.delete("speed"); else params.set("speed", this.speed.value);
    history.replaceState(null, "", `${location.pathname}?${params}`);
    this.onChange(this.state());
  }
}
