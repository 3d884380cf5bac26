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
    its top module's target for batch t comes down later; the module learns from
    it (inputs kept from t) right before the stage starts batch t + window, at the
    same point every run; the top stage uses the true loss.

Weights of a stage change only in that stage and batches go through every
stage in order, so each layer sees exactly the inputs and weights it would see
sequentially. The only difference is when a stage's top module learns: a few
batches late (window - 1 batches: one with two workers), the same every run, so
the same config and seed give the same records however the threads ran (a test).
With one worker (one stage) nothing is late, and the records equal the sequential
engine's (a test checks record for record).

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

import dataclasses
import itertools
import math
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .config import TrainConfig
from .data import Dataset
from .diagnostics import square_sums
from .nn import Activations, Pass
from .rules import Applies, Backward, SyntheticGradients
from .state import CaptureError, TrainerState
from .synthetic import module_loss
from .trainer import Record, Trainer, fill_fidelity

Array = np.ndarray
#: Batches in flight per stage: one keeps every stage busy, and each module's targets
#: at most (stages - 1) batches late; more only makes them later.
WINDOW_PER_STAGE = 1
#: Pre-update copies a diagnosed batch keeps for its late true gradient: weights and
#: normalisation scales of the stage's layers, by index.
Kept = tuple[Activations, Activations]


# What crosses a stage's inbox: small messages matched by type.
@dataclass(frozen=True)
class Batch:
    """A batch to train through the stage (`h_in`: the output of the stage below)."""

    step: int
    position: int  # in the epoch
    x: Array
    y: Array
    applies: Applies
    diagnose: bool
    h_in: Array | None = None


@dataclass(frozen=True)
class Credit:
    """The reader took a record: stage 0 may start one more batch."""


@dataclass(frozen=True)
class Wake:
    """A sync point passed (a whole-net evaluation): stage 0 may go on."""


@dataclass(frozen=True)
class Target:
    """The late target for the stage's top module, of the batch at `step`."""

    step: int
    value: Array


@dataclass(frozen=True)
class Truth:
    """The true gradient at the stage's output, of the diagnosed batch at `step`."""

    step: int
    value: Array


@dataclass(frozen=True)
class Quit:
    """The worker ends (the run ended or was stopped; for stage 0: every batch handed out)."""


Message = Batch | Credit | Wake | Target | Truth | Quit


class Part(NamedTuple):
    """One stage's fragment of a step's record; `diverged` from the top stage whose loss
    was not finite (the step's record is then that fragment alone)."""

    fields: dict[str, Any]
    diverged: bool = False


@dataclass
class Stage:
    index: int
    lo: int  # first layer
    hi: int  # one past the last layer
    #: batches from below; targets and true gradients for the top module from above
    inbox: queue.Queue[Message] = field(default_factory=queue.Queue)
    #: batch -> what the top module's late target needs (see _Pending)
    pending: dict[int, _Pending] = field(default_factory=dict)
    #: batch -> its late target, in, with what the top module needs to learn from it; it
    #: learns from batch t's right before the stage starts batch t + window (`_learn_late`)
    late: dict[int, tuple[Array, Array, Any, Any]] = field(default_factory=dict)
    next_late: int = 1  # the batch whose late target the top module learns from next


@dataclass
class _Pending:
    prediction: Array
    context: Any
    applies: bool
    diagnose: bool
    fragment: dict[str, Any]
    hs: Pass = field(default_factory=Pass)  # inputs of each layer (and normalisation caches)
    #: pre-update copies of the stage's weights and normalisation scales
    kept: Kept = field(default_factory=lambda: ({}, {}))
    signals: Activations = field(default_factory=dict)
    target_in: bool = False


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
        # Batches stage 0 may start beyond those asked for: step() sends one credit before it
        # waits, so at most `window` batches are in flight while the reader reads and
        # window - 1 when it does not (none with one batch in flight: nothing runs ahead).
        self._credit = self.window - 1
        self._lock = threading.Lock()
        self._fragments: dict[int, list[Part]] = {}
        self._next = 1
        self._synced: dict[int, threading.Event] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
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
        self.stages[0].inbox.put(Credit())
        item = self._out.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        self._returned += 1
        self._mark_change(item)
        self.elapsed = time.perf_counter() - self._origin - self._stalled
        item["wall_time"] = self.elapsed
        item["unix_time"] = time.time()
        self.epoch_fidelity.add(item)
        return item

    def capture(self) -> TrainerState:
        """The state between two steps; only with one batch in flight (`window` 1, as with
        one worker), where nothing runs ahead of the records read."""
        if self.window != 1:
            raise CaptureError(
                f"a pipelined trainer with {self.window} batches in flight has no state between "
                "two steps to capture; train it with one worker to branch or save it"
            )
        return super().capture()

    def restore(self, state: TrainerState) -> None:
        super().restore(state)
        self._next = self.step_count + 1  # the next record to assemble
        for stage in self.stages:
            stage.next_late = self.step_count + 1

    def close(self) -> None:
        """Stop the workers (a stopped run; finished ones stop by themselves)."""
        self._stop.set()
        for stage in self.stages:
            stage.inbox.put(Quit())

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
            item: Message | None = self._next_batch_item() if stage.index == 0 else None
            if item is None:
                blocked = time.perf_counter()
                idle = stage.index == 0 and self._next > self.step_count  # nothing in flight
                item = stage.inbox.get()
                if idle:  # the reader is not reading (a paused run): not training time
                    self._stalled += time.perf_counter() - blocked
            match item:
                case Quit():
                    return
                case Batch():
                    started = time.perf_counter()
                    if started - idle_since > 1e-4:
                        self._log(stage.index, "w", idle_since, started)
                    self._process(stage, item)
                    idle_since = time.perf_counter()
                    self.busy[stage.index] += idle_since - started
                case Credit():
                    self._credit += 1
                case Target() | Truth():
                    self._receive(stage, item)

    def _next_batch_item(self) -> Batch | Quit | None:
        """Stage 0's next batch; None if it must wait (the reader, a sync point); Quit once
        every batch is handed out."""
        if self.step_count >= self.total_steps:
            return Quit() if not self.stages[0].pending else None
        sync = self._synced.get(self.step_count)
        if sync is not None and not sync.is_set():
            return None  # the previous step evaluates the whole net: wait for it
        if self._credit <= 0:
            return None
        self._credit -= 1
        x, y, position = self.next_batch()
        step = self.step_count
        cfg = self.config
        if self._periodic_due(step, position) or step >= self.total_steps:
            self._synced[step] = threading.Event()
        applies = self.layers_that_update(self.net.depth)
        diagnose = cfg.diagnostics_every > 0 and step % cfg.diagnostics_every == 0
        return Batch(step, position, x, y, applies, diagnose)

    def _periodic_due(self, step: int, position: int) -> bool:
        cfg = self.config
        return bool(
            (cfg.histogram_every and step % cfg.histogram_every == 0)
            or position == self.steps_per_epoch - 1
            or (cfg.test_every and step % cfg.test_every == 0)
        )

    def _process(self, stage: Stage, batch: Batch) -> None:
        """One batch through one stage: the sequential engine's step on the stage's layers
        (Network.forward, the rule's backward and learn, Trainer._apply), then hand on."""
        net, rule = self.net, self.rule
        step, x, y, applies, diagnose = batch.step, batch.x, batch.y, batch.applies, batch.diagnose
        lo, hi, depth = stage.lo, stage.hi, net.depth
        top = hi == depth
        if not top:
            self._learn_late(stage, step - self.window)
        fragment: dict[str, Any] = {}
        forward_times: list[float] | None = [] if diagnose else None
        t0 = time.perf_counter()
        h = x if batch.h_in is None else batch.h_in
        hs, logits, out = net.forward(h, lo, hi, forward_times)
        self._log(stage.index, "f", t0, time.perf_counter())
        top_delta = None
        if top:
            top_delta = self._top_output(stage, step, fragment, (logits, out), y)
            if top_delta is None:
                return
        t0 = time.perf_counter()
        work = rule.backward(net, hs, top_delta, y, None, lo, hi)
        self._log(stage.index, "s", t0, time.perf_counter())
        if lo > 0:  # the module below learns from it as soon as it gets there
            self.stages[stage.index - 1].inbox.put(Target(step, work.targets[lo - 1]))
        truth, kept, before = self._before_update(stage, hs, top_delta, diagnose)
        updates, starts, update_times = self._apply(hs, work, applies, lo, hi, timed=True)
        for t0, took, update in zip(starts, update_times, updates, strict=True):
            self._log(stage.index, "x" if update is None else "u", t0, t0 + took)
        t0 = time.perf_counter()
        errors = rule.learn(work, applies, range(lo, hi))  # inner modules: as sequentially
        self._log(stage.index, "m", t0, time.perf_counter())
        if forward_times is not None:  # a diagnosed batch
            self._layer_diagnostics(
                fragment, hs, errors, (updates, before), (forward_times, update_times), lo, hi
            )
        self._hand_on(stage, batch, hs, work, fragment, (truth, kept))

    def _hand_on(
        self,
        stage: Stage,
        batch: Batch,
        hs: Pass,
        work: Backward,
        fragment: dict[str, Any],
        diagnosis: tuple[Activations, Kept],
    ) -> None:
        """The top stage completes its fragment; any other keeps what its top module's late
        target and true gradient will need, and hands its output to the stage above."""
        step, applies, diagnose = batch.step, batch.applies, batch.diagnose
        truth, kept = diagnosis  # the top stage's true gradients; other stages' weight copies
        lo, hi = stage.lo, stage.hi
        if hi == self.net.depth:
            fill_fidelity(fragment, work.signals, truth)
            if lo > 0 and diagnose:
                self.stages[stage.index - 1].inbox.put(Truth(step, truth[lo - 1]))
            self._submit(stage, step, fragment)
            return
        k = hi - 1  # the stage's top hidden layer: its target comes from above, later
        applied = bool(applies is None or applies[k])
        stage.pending[step] = _Pending(
            work.predictions[k],
            work.contexts[k],
            applied,
            diagnose,
            fragment,
            hs,
            kept,
            work.signals,
        )
        self.stages[stage.index + 1].inbox.put(dataclasses.replace(batch, h_in=hs[hi]))

    def _top_output(
        self, stage: Stage, step: int, fragment: dict[str, Any], out: tuple[Any, Any], y: Array
    ) -> Array | None:
        """The top stage's loss, accuracy and output delta; None when it diverged (the
        fragment is then submitted: the run ends with this step)."""
        fragment.update({"step": step, "epoch": step / self.steps_per_epoch})
        top_delta = self._output(fragment, *out, y)
        if top_delta is None:
            self._submit(stage, step, fragment, diverged=True)
        return top_delta

    def _before_update(
        self, stage: Stage, hs: Pass, top_delta: Array | None, diagnose: bool
    ) -> tuple[Activations, Kept, list[float]]:
        """For a diagnosed batch: the true gradient (top stage) or a copy of the weights the
        late true gradient will need (other stages), and the weights' square sums."""
        if not diagnose:
            return {}, ({}, {}), []
        lo, hi, net = stage.lo, stage.hi, self.net
        kept: Kept
        if top_delta is not None:
            truth, kept = net.true_backward(hs, top_delta, lo, hi)[0], ({}, {})
        else:
            weights = {k: net.weights[k].copy() for k in range(lo, hi)}
            gammas = {k: net.gamma[k].copy() for k in range(lo, hi) if k < len(net.gamma)}
            truth, kept = {}, (weights, gammas)
        return truth, kept, square_sums(*net.weight_segment(lo, hi))

    def _receive(self, stage: Stage, message: Target | Truth) -> None:
        """A late target for the stage's top module, or the true gradient at its output."""
        step, value = message.step, message.value
        pending = stage.pending[step]
        k = stage.hi - 1
        if isinstance(message, Target):  # learned from later, at a set point (_learn_late)
            stage.late[step] = (pending.prediction, value, pending.applies, pending.context)
            if pending.diagnose:
                error = pending.prediction - value  # what learning from it will return
                pending.fragment[f"module_loss_h{k + 1}"] = module_loss(error)
                pending.target_in = True
                return
            del stage.pending[step]
            self._submit(stage, step, pending.fragment)
            return
        # The true gradient at this stage's output, for a diagnosed batch.
        truth, _, _ = self.net.true_backward(
            pending.hs, None, stage.lo, stage.hi, top_gradient=value, kept=pending.kept
        )
        fill_fidelity(pending.fragment, pending.signals, truth)
        if stage.lo > 0:
            self.stages[stage.index - 1].inbox.put(Truth(step, truth[stage.lo - 1]))
        del stage.pending[step]
        self._submit(stage, step, pending.fragment)

    def _learn_late(self, stage: Stage, upto: int) -> None:
        """The stage's top module learns from the late targets of batches up to `upto`, in
        batch order: before batch t it has learned from exactly those of batches up to
        t - window, however the threads ran, so a run's records are the same every time.

        They are always in by then: stage 0 starts batch t only once the record of batch
        t - window is complete, and that record needs every stage to have taken in its
        target (credits: at most `window` batches in flight).
        """
        k = stage.hi - 1
        while stage.next_late <= upto:
            prediction, target, applies, context = stage.late.pop(stage.next_late)
            t0 = time.perf_counter()
            self.rule.learn_one(k, prediction, target, applies, context)  # type: ignore[attr-defined]
            self._log(stage.index, "m", t0, time.perf_counter())
            stage.next_late += 1

    # -- records -----------------------------------------------------------------
    def _submit(
        self, stage: Stage, step: int, fragment: dict[str, Any], diverged: bool = False
    ) -> None:
        with self._lock:
            self._fragments.setdefault(step, []).append(Part(fragment, diverged))
            while True:
                parts = self._fragments.get(self._next, [])
                diverged = any(p.diverged for p in parts)
                if not diverged and len(parts) < len(self.stages):
                    return
                self._complete(self._next, parts, diverged)
                del self._fragments[self._next]
                self._next += 1
                if self.status != "running":
                    return

    def _complete(self, step: int, parts: list[Part], diverged: bool) -> None:
        """Under the lock: one step's record from its fragments, in step order."""
        self._made += 1  # before the status may end: done waits for this record to be read
        record: Record = {}
        for part in parts:
            if part.diverged or not diverged:
                record.update(part.fields)
        now = round(time.perf_counter() - self._origin, 6)
        record["timeline"], self._events = self._events, []
        record["timeline_window"] = [self._window_start, now]
        self._window_start = now
        if diverged or not all(
            math.isfinite(record.get(f"w_norm_l{k + 1}", 0.0)) for k in range(self.net.depth)
        ):
            record = self.diverge(record)
        else:
            position = (step - 1) % self.steps_per_epoch
            self.periodic(record, step, position)
            record = self.check_end(record)
        if self.status != "running":
            self._stop.set()
            for stage in self.stages:
                stage.inbox.put(Quit())
        sync = self._synced.pop(step, None)
        if sync is not None:
            sync.set()
            self.stages[0].inbox.put(Wake())  # stage 0 may go on
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
