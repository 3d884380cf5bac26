"""Layer-pipelined DNI: each stage of layers in its own worker thread, updating at once.

What decoupling buys (Jaderberg et al., arXiv 1608.05343): a stage that gets its
gradient from its own synthetic-gradient module need not wait for the layers
above. So stage s works on batch t while stage s+1 works on batch t-1:

    stage s, batch t:  wait for h_lo(t) from below (stage 0 reads the batch)
                       forward its layers; each hidden layer's module predicts
                       its gradient; deltas within the stage; the target for the
                       module below (delta_lo W_lo^T, pre-update) goes down at once
                       update its weights; train its inner modules
                       hand h_hi(t) to the stage above, go on with batch t+1
    when a target for its top module arrives (batch t' <= t), the module learns
    from it (inputs kept from t'); the top stage uses the true loss.

Weights of a stage change only in that stage and batches go through every
stage in order, so each layer sees exactly the inputs and weights it would see
sequentially. The only difference is when a stage's top module learns: a few
batches late. With one worker (one stage) nothing is late, and the records equal
the sequential engine's (a test checks record for record).

Diagnostics compare each signal with the true gradient of the same batch at the
weights that stage used: the true gradient flows down after the target, and a
stage keeps a copy of its pre-update weights for diagnosed batches until it
arrives. Held-out evaluations, histograms and the last step are sync points:
stage 0 waits there until the record is complete, so they see one set of
weights. Numpy's matrix products release the GIL, so threads run the stages in
parallel (docs/benchmarks.md, "Pipeline").

Every record carries `timeline`: [stage, kind, start, end] for each piece of work
that ended since the previous record (kind: f forward, s synthetic gradient,
u update, x skipped update, m module update, w waiting for input), seconds since
the run started; `timeline_window` is the span those events cover.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import TrainConfig
from .data import Dataset
from .diagnostics import fidelity, layer_stats, saturation, square_sums
from .rules import SyntheticGradients
from .synthetic import module_loss
from .trainer import Record, Trainer

Array = np.ndarray
#: Batches in flight per stage: one keeps every stage busy, and each module's targets
#: at most (stages - 1) batches late; more only makes them later.
WINDOW_PER_STAGE = 1
#: What stage 0 reads when every batch has been handed out.
END = object()


@dataclass
class Stage:
    index: int
    lo: int  # first layer
    hi: int  # one past the last layer
    #: batches from below; targets and true gradients for the top module from above
    inbox: queue.Queue[Any] = field(default_factory=queue.Queue)
    #: batch -> what the top module's late target needs (see _Pending)
    pending: dict[int, _Pending] = field(default_factory=dict)


@dataclass
class _Pending:
    prediction: Array
    context: tuple[Array | None, Array | None]
    applies: bool
    diagnose: bool
    fragment: dict[str, Any]
    hs: dict[int, Array] = field(default_factory=dict)  # inputs of each layer
    weights: dict[int, Array] = field(default_factory=dict)  # pre-update copies
    signals: dict[int, Array] = field(default_factory=dict)
    target_in: bool = False


@dataclass
class _Work:
    """A stage's synthetic-gradient pass over one batch, by layer index."""

    predictions: dict[int, Array] = field(default_factory=dict)
    contexts: dict[int, tuple[Array | None, Array | None]] = field(default_factory=dict)
    signals: dict[int, Array] = field(default_factory=dict)
    deltas: dict[int, Array] = field(default_factory=dict)
    targets: dict[int, Array] = field(default_factory=dict)


def plan_stages(costs: list[float], workers: int) -> list[tuple[int, int]]:
    """Contiguous layer ranges for `workers` stages that minimise the largest stage cost."""
    n = len(costs)
    best: tuple[float, list[tuple[int, int]]] | None = None
    for cuts in itertools.combinations(range(1, n), workers - 1):
        bounds = [0, *cuts, n]
        ranges = list(itertools.pairwise(bounds))
        worst = max(sum(costs[a:b]) for a, b in ranges)
        if best is None or worst < best[0]:
            best = (worst, ranges)
    assert best is not None
    return best[1]


class PipelinedTrainer(Trainer):
    """A Trainer whose dni/cdni step runs as a pipeline of stages in worker threads."""

    def __init__(
        self, config: TrainConfig, dataset: Dataset | None = None, window: int | None = None
    ) -> None:
        """`window`: batches in flight (default one per stage); 1 makes it lockstep."""
        super().__init__(config, dataset)
        if not isinstance(self.rule, SyntheticGradients):
            raise ValueError("only dni and cdni can be pipelined")
        depth = self.net.depth
        workers = min(self.config.workers, depth)
        self.stage_costs = self._measure_layer_costs()
        self.stages = [
            Stage(i, lo, hi) for i, (lo, hi) in enumerate(plan_stages(self.stage_costs, workers))
        ]
        self._out: queue.Queue[Record | BaseException] = queue.Queue()
        self.window = window or WINDOW_PER_STAGE * len(self.stages)
        self._credit = self.window  # batches stage 0 may start; step() sends one more each
        self._lock = threading.Lock()
        self._fragments: dict[int, list[dict[str, Any]]] = {}
        self._next = 1
        self._synced: dict[int, threading.Event] = {}
        self._events: list[list[Any]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._origin = time.perf_counter()
        self._window_start = 0.0
        self._stalled = 0.0  # seconds the pipeline stood idle waiting for the reader (paused)
        self._made = self._returned = 0  # records completed by the workers / read by step()
        #: share of the time each stage was busy (not waiting for input), for the benchmark
        self.busy = [0.0] * len(self.stages)

    # -- the reader's side ---------------------------------------------------
    def step(self) -> Record:
        if self.done:
            raise RuntimeError(f"the run is {self.status}; no more steps")
        if not self._threads:
            self._start()
        item = self._out.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        self._returned += 1
        self.stages[0].inbox.put(("credit",))
        self.elapsed = time.perf_counter() - self._origin - self._stalled
        item["wall_time"] = self.elapsed
        item["unix_time"] = time.time()
        self.epoch_fidelity.add(item)
        return item

    def close(self) -> None:
        """Stop the workers (a stopped run; finished ones stop by themselves)."""
        self._stop.set()
        for stage in self.stages:
            stage.inbox.put(None)

    def _start(self) -> None:
        self._origin = time.perf_counter()
        for stage in self.stages:
            thread = threading.Thread(
                target=self._run_stage, args=(stage,), name=f"stage-{stage.index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    # -- planning --------------------------------------------------------------
    def _measure_layer_costs(self) -> list[float]:
        """Seconds of each layer's matrix work (forward, update, module) on random data."""
        rng = np.random.default_rng(0)
        b = self.batch_size
        costs = []
        for k, w in enumerate(self.net.weights):
            rows, cols = np.shape(w)  # type: ignore[misc]  # (a view typed shapeless)
            x = rng.standard_normal((b, rows))
            d = rng.standard_normal((b, cols))
            work = [lambda x=x, w=w: x @ w, lambda x=x, d=d: x.T @ d, lambda d=d, w=w: d @ w.T]
            if k < self.net.depth - 1:
                m = self.rule.modules[k]  # type: ignore[attr-defined]
                p = m.params[0]
                h = rng.standard_normal((b, p.shape[0]))
                work += [lambda h=h, p=p: h @ p, lambda h=h, p=p: h.T @ (h @ p)]
            best = math.inf
            for _ in range(3):
                t0 = time.perf_counter()
                for job in work:
                    job()
                best = min(best, time.perf_counter() - t0)
            costs.append(best)
        return costs

    # -- a stage -----------------------------------------------------------------
    def _log(self, stage: int, kind: str, start: float, end: float) -> None:
        with self._lock:
            self._events.append(
                [stage, kind, round(start - self._origin, 6), round(end - self._origin, 6)]
            )

    def _run_stage(self, stage: Stage) -> None:
        """A worker: batches in order from below (stage 0: from the data), and whatever
        comes down from above (targets, true gradients) as it comes."""
        try:
            with np.errstate(all="ignore"):  # per thread, as Trainer.step sets it
                self._serve(stage)
        except BaseException as exc:  # a worker's error reaches the reader
            self._stop.set()
            self._out.put(exc)

    def _serve(self, stage: Stage) -> None:
        idle_since = time.perf_counter()
        while not self._stop.is_set():
            item: Any = self._next_batch_item() if stage.index == 0 else None
            if item is END:
                return
            if item is None:
                blocked = time.perf_counter()
                idle = stage.index == 0 and self._next > self.step_count  # nothing in flight
                item = stage.inbox.get()
                if idle:  # the reader is not reading (a paused run): not training time
                    self._stalled += time.perf_counter() - blocked
                if item is None:
                    return
            kind = item[0]
            if kind == "batch":
                started = time.perf_counter()
                if started - idle_since > 1e-4:
                    self._log(stage.index, "w", idle_since, started)
                self._process(stage, *item[1:])
                idle_since = time.perf_counter()
                self.busy[stage.index] += idle_since - started
            elif kind == "credit":
                self._credit += 1
            elif kind != "sync":
                self._receive(stage, *item)

    def _next_batch_item(self) -> Any:
        """Stage 0's next batch; None if it must wait (the reader, a sync point); END."""
        if self.step_count >= self.total_steps:
            return END if not self.stages[0].pending else None
        sync = self._synced.get(self.step_count)
        if sync is not None and not sync.is_set():
            return None  # the previous step evaluates the whole net: wait for it
        if self._credit <= 0:
            return None
        self._credit -= 1
        x, y, position = self._next_batch()
        step = self.step_count
        cfg = self.config
        if self._periodic_due(step, position) or step >= self.total_steps:
            self._synced[step] = threading.Event()
        applies = self._layers_that_update(self.net.depth)
        diagnose = cfg.diagnostics_every > 0 and step % cfg.diagnostics_every == 0
        return ("batch", step, position, x, y, applies, diagnose)

    def _periodic_due(self, step: int, position: int) -> bool:
        cfg = self.config
        return bool(
            (cfg.histogram_every and step % cfg.histogram_every == 0)
            or position == self.steps_per_epoch - 1
            or (cfg.test_every and step % cfg.test_every == 0)
        )

    def _process(
        self,
        stage: Stage,
        step: int,
        position: int,
        x: Array,
        y: Array,
        applies: list[bool] | None,
        diagnose: bool,
        h_in: Array | None = None,
    ) -> None:
        """One batch through one stage: forward, synthetic gradients, updates, hand on."""
        net = self.net
        lo, hi, depth = stage.lo, stage.hi, net.depth
        top = hi == depth
        fragment: dict[str, Any] = {}
        hs, forward_times, logits, out = self._forward(stage, x if lo == 0 else h_in)
        top_delta = None
        if top:
            top_delta = self._loss(fragment, step, logits, out, y)
            if top_delta is None:  # diverged
                self._submit(stage, step, fragment)
                return
        work = self._synthetic(stage, hs, y, top_delta)
        if lo > 0:  # the module below learns from it as soon as it gets there
            self.stages[stage.index - 1].inbox.put(("target", step, work.targets[lo - 1]))
        truth, kept, before = self._before_update(stage, hs, top_delta, diagnose)
        updates, update_times = self._update_stage(stage, hs, work.deltas, applies)
        if top or lo + 1 < hi:
            self._learn_inner(stage, work, applies, fragment if diagnose else None)
        if diagnose:
            self._stage_stats(stage, fragment, hs, updates, before, forward_times, update_times)
        if top:
            self._fidelity(fragment, work.signals, truth)
            if lo > 0 and diagnose:
                self.stages[stage.index - 1].inbox.put(("truth", step, truth[lo - 1]))
            self._submit(stage, step, fragment)
            return
        k = hi - 1  # the stage's top hidden layer: its target comes from above, later
        stage.pending[step] = _Pending(
            work.predictions[k],
            work.contexts[k],
            bool(applies is None or applies[k]),
            diagnose,
            fragment,
            hs,
            kept,
            work.signals,
        )
        nxt = self.stages[stage.index + 1]
        nxt.inbox.put(("batch", step, position, x, y, applies, diagnose, hs[hi]))

    def _before_update(
        self, stage: Stage, hs: dict[int, Array], top_delta: Array | None, diagnose: bool
    ) -> tuple[dict[int, Array], dict[int, Array], list[float]]:
        """For a diagnosed batch: the true gradient (top stage) or a copy of the weights the
        late true gradient will need (other stages), and the weights' square sums."""
        if not diagnose:
            return {}, {}, []
        lo, hi = stage.lo, stage.hi
        if top_delta is not None:
            truth, kept = self._truth_down(hs, top_delta, lo, hi), {}
        else:
            truth, kept = {}, {k: self.net.weights[k].copy() for k in range(lo, hi)}
        return truth, kept, square_sums(*self._segment(lo, hi))

    def _loss(
        self, fragment: dict[str, Any], step: int, logits: Array | None, out: Array | None, y: Array
    ) -> Array | None:
        """The top stage's loss and accuracy into `fragment`; the output delta, None if the
        loss is not finite (the run diverged)."""
        net = self.net
        assert logits is not None and out is not None
        loss = net.out.loss(logits, out, y)
        fragment.update({"step": step, "epoch": step / self.steps_per_epoch, "loss": loss})
        fragment.update(self._batch_accuracy(logits, y))
        if not math.isfinite(loss):
            fragment["_diverged"] = True
            return None
        delta: Array = net.out.delta(logits, out, y)
        return delta

    def _learn_inner(
        self,
        stage: Stage,
        work: _Work,
        applies: list[bool] | None,
        fragment: dict[str, Any] | None,
    ) -> None:
        """Inner modules (and the top module of the top stage) learn now, as sequentially."""
        t0 = time.perf_counter()
        for k in range(stage.lo, min(stage.hi - 1, self.net.depth - 1)):
            error = self._learn(k, work.predictions[k], work.targets[k], applies, work.contexts[k])
            if fragment is not None:
                fragment[f"module_loss_h{k + 1}"] = module_loss(error)
        self._log(stage.index, "m", t0, time.perf_counter())

    def _forward(
        self, stage: Stage, h: Array | None
    ) -> tuple[dict[int, Array], list[float], Array | None, Array | None]:
        """The stage's layers on its input: inputs of each layer, times, top logits/output."""
        net = self.net
        assert h is not None
        hs: dict[int, Array] = {stage.lo: h}
        times = []
        logits = out = None
        started = time.perf_counter()
        for k in range(stage.lo, stage.hi):
            t0 = time.perf_counter()
            a = h @ net.weights[k] + net.biases[k]
            if k == net.depth - 1:
                logits, out = a, net.out.output(a)
            else:
                h = net.f(a)
                hs[k + 1] = h
            times.append(time.perf_counter() - t0)
        self._log(stage.index, "f", started, time.perf_counter())
        return hs, times, logits, out

    def _synthetic(
        self, stage: Stage, hs: dict[int, Array], y: Array, top_delta: Array | None
    ) -> _Work:
        """Each hidden layer's module predicts its gradient; deltas; targets (pre-update)."""
        net, rule = self.net, self.rule
        assert isinstance(rule, SyntheticGradients)
        depth = net.depth
        t0 = time.perf_counter()
        work = _Work()
        estimates: dict[int, Array] = {}
        for k in range(stage.lo, min(stage.hi, depth - 1)):
            module = rule.modules[k]
            prediction = module.predict(hs[k + 1], y)
            work.predictions[k] = prediction
            work.contexts[k] = module.context() if hasattr(module, "context") else (None, None)
            estimate = prediction * net.f_grad(hs[k + 1])
            estimates[k] = estimate
            if rule.scale != 1.0:
                work.signals[k], work.deltas[k] = prediction * rule.scale, estimate * rule.scale
            else:
                work.signals[k], work.deltas[k] = prediction, estimate
        if top_delta is not None:
            work.deltas[depth - 1] = top_delta
        for k in range(max(stage.lo, 1), stage.hi):
            source = estimates[k] if k < depth - 1 else top_delta
            assert source is not None
            work.targets[k - 1] = source @ net.weights[k].T
        self._log(stage.index, "s", t0, time.perf_counter())
        return work

    def _update_stage(
        self,
        stage: Stage,
        hs: dict[int, Array],
        deltas: dict[int, Array],
        applies: list[bool] | None,
    ) -> tuple[list[Array | None], list[float]]:
        updates: list[Array | None] = []
        times: list[float] = []
        for k in range(stage.lo, stage.hi):
            t0 = time.perf_counter()
            if applies is None or applies[k]:
                updates.append(self.optimizer.step_dense(2 * k, hs[k], deltas[k]))
                kind = "u"
            else:
                updates.append(None)
                kind = "x"  # a skipped update (update_probability < 1)
            end = time.perf_counter()
            times.append(end - t0)
            self._log(stage.index, kind, t0, end)
        return updates, times

    def _stage_stats(
        self,
        stage: Stage,
        fragment: dict[str, Any],
        hs: dict[int, Array],
        updates: list[Array | None],
        before: list[float],
        forward_times: list[float],
        update_times: list[float],
    ) -> None:
        stats = layer_stats(*self._segment(stage.lo, stage.hi), updates, before)
        names = ("w_mean", "w_std", "w_norm", "w_max", "update_ratio")
        for i, k in enumerate(range(stage.lo, stage.hi)):
            for name, value in zip(names, stats[i], strict=True):
                fragment[f"{name}_l{k + 1}"] = value
            fragment[f"t_forward_l{k + 1}"] = forward_times[i]
            fragment[f"t_update_l{k + 1}"] = update_times[i]
        activation = self.net.activation_name
        for k in range(stage.lo, min(stage.hi, self.net.depth - 1)):
            fragment[f"saturated_h{k + 1}"] = saturation(hs[k + 1], activation)

    def _learn(
        self,
        k: int,
        prediction: Array,
        target: Array,
        applies: list[bool] | bool | None,
        context: tuple[Array | None, Array | None],
    ) -> Array:
        module = self.rule.modules[k]  # type: ignore[attr-defined]
        applied = applies if isinstance(applies, bool) else applies is None or applies[k]
        if not applied:
            return prediction - target
        if context[0] is None:
            return module.update(prediction, target)  # type: ignore[no-any-return]
        return module.update(prediction, target, context)  # type: ignore[no-any-return]

    def _receive(self, stage: Stage, kind: str, step: int, value: Array) -> None:
        pending = stage.pending[step]
        k = stage.hi - 1
        if kind == "target":
            t0 = time.perf_counter()
            error = self._learn(k, pending.prediction, value, pending.applies, pending.context)
            self._log(stage.index, "m", t0, time.perf_counter())
            if pending.diagnose:
                pending.fragment[f"module_loss_h{k + 1}"] = module_loss(error)
                pending.target_in = True
                return
            del stage.pending[step]
            self._submit(stage, step, pending.fragment)
            return
        # The true gradient at this stage's output, for a diagnosed batch.
        truth = self._truth_down(pending.hs, None, stage.lo, stage.hi, value, pending.weights)
        self._fidelity(pending.fragment, pending.signals, truth)
        if stage.lo > 0:
            self.stages[stage.index - 1].inbox.put(("truth", step, truth[stage.lo - 1]))
        del stage.pending[step]
        self._submit(stage, step, pending.fragment)

    def _truth_down(
        self,
        hs: dict[int, Array],
        top_delta: Array | None,
        lo: int,
        hi: int,
        g_top: Array | None = None,
        weights: dict[int, Array] | None = None,
    ) -> dict[int, Array]:
        """True dLoss/dh per hidden layer of the stage (and at its input), pre-update weights."""
        net = self.net
        w = weights if weights is not None else {k: net.weights[k] for k in range(lo, hi)}
        grads: dict[int, Array] = {}
        if top_delta is not None:
            delta = top_delta
        else:
            assert g_top is not None
            grads[hi - 1] = g_top
            delta = g_top * net.f_grad(hs[hi])
        for i in range(hi - 1, max(lo, 1) - 1, -1):
            g = delta @ w[i].T
            grads[i - 1] = g
            if i > lo:
                delta = g * net.f_grad(hs[i])
        return grads

    def _fidelity(
        self, fragment: dict[str, Any], signals: dict[int, Array], truth: dict[int, Array]
    ) -> None:
        for k, signal in signals.items():
            if k in truth:
                cos, rel, ratio = fidelity(signal, truth[k])
                fragment[f"cos_h{k + 1}"] = cos
                fragment[f"rel_err_h{k + 1}"] = rel
                fragment[f"norm_ratio_h{k + 1}"] = ratio

    def _segment(self, lo: int, hi: int) -> tuple[Array, Array]:
        """The flat weights of layers [lo, hi) and their starts within that slice."""
        starts = self.net.weight_starts
        begin = int(starts[lo])
        end = int(starts[hi]) if hi < len(starts) else self.net.flat_weights.size
        return self.net.flat_weights[begin:end], starts[lo:hi] - begin

    # -- records -----------------------------------------------------------------
    def _submit(self, stage: Stage, step: int, fragment: dict[str, Any]) -> None:
        with self._lock:
            parts = self._fragments.setdefault(step, [])
            parts.append(fragment)
            while True:
                parts = self._fragments.get(self._next, [])
                diverged = any(p.get("_diverged") for p in parts)
                if not diverged and len(parts) < len(self.stages):
                    return
                self._complete(self._next, parts, diverged)
                del self._fragments[self._next]
                self._next += 1
                if self.status != "running":
                    return

    def _complete(self, step: int, parts: list[dict[str, Any]], diverged: bool) -> None:
        """Under the lock: one step's record from its fragments, in step order."""
        self._made += 1  # before the status may end: done waits for this record to be read
        record: Record = {}
        for part in parts if not diverged else [p for p in parts if p.get("_diverged")]:
            record.update(part)
        record.pop("_diverged", None)
        now = round(time.perf_counter() - self._origin, 6)
        record["timeline"], self._events = self._events, []
        record["timeline_window"] = [self._window_start, now]
        self._window_start = now
        if diverged or not all(
            math.isfinite(record.get(f"w_norm_l{k + 1}", 0.0)) for k in range(self.net.depth)
        ):
            record = self._diverge(record)
        else:
            position = (step - 1) % self.steps_per_epoch
            self._periodic(record, step, position)
            record = self._check_end(record)
        if self.status != "running":
            self._stop.set()
            for stage in self.stages:
                stage.inbox.put(None)
        sync = self._synced.pop(step, None)
        if sync is not None:
            sync.set()
            self.stages[0].inbox.put(("sync",))  # wake stage 0: it may go on
        self._out.put(record)

    @property
    def done(self) -> bool:
        """Ended, and every record made has been read (the workers end before the reader)."""
        return self.status != "running" and self._returned >= self._made

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["execution"] = f"pipelined, {len(self.stages)} stages"
        return out


#: Why a pipelined config of these rules trains sequentially.
LOCKED = {
    "backprop": "backprop is locked: every layer waits for the backward pass from the top",
    "feedback_alignment": (
        "feedback alignment is locked: the error still travels down from the top, "
        "through fixed matrices"
    ),
}


def make_trainer(config: TrainConfig, dataset: Dataset | None = None) -> Trainer:
    """The trainer a config asks for: pipelined for dni/cdni with execution "pipelined"."""
    cfg = config.resolve()
    if cfg.execution == "pipelined" and cfg.method in ("dni", "cdni"):
        return PipelinedTrainer(config, dataset)
    trainer = Trainer(config, dataset)
    if cfg.execution == "pipelined":
        trainer.notes.append(f"trained sequentially: {LOCKED[cfg.method]}")
    return trainer
