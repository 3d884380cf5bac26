"""Several seeds of one config trained as one computation.

A researcher never trusts one seed, and on small nets a step's time is mostly Python
and call overhead, not arithmetic. `SeedBatch` stacks the seeds on a leading axis:
weights (seeds, fan_in, fan_out), biases and scales (seeds, 1, width), a batch (seeds,
batch, width), modules and optimiser moments alike, so one `np.matmul` over the stack
does every seed's product and the network, rules, modules and optimisers run unchanged
(their math reads the batch axis as -2; synthgrad_core.nn).

Each seed keeps its own `SeedBook` (synthgrad_core.bookkeeping, as a Trainer does) for
everything that is not the stacked arithmetic: its data split and order, held-out
evaluations, divergence and explosion watch, summary and captured state's metadata. Its
records are built for every seed in one pass: each figure one stacked reduction
(diagnostics.StepFigures), one (seeds, fields) table, one row per seed; the held-out
evaluations due at a step run once for every seed through the stacked network. Its network is
a view of its slice of the stack (`Network.seed`), so what it evaluates is what the stack
trained. Each seed's records equal the records of that seed trained alone
(tests/core/test_seeds.py: to 1e-9, every rule).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .bookkeeping import SeedBook, batch_accuracy, evaluate
from .config import ConfigError, Method, ResolvedConfig, TrainConfig, io_sizes
from .data import Dataset, load_dataset
from .diagnostics import StepFigures, table_rows
from .nn import VECTORS, Network, Pass
from .rules import (
    Backprop,
    Backward,
    FeedbackAlignment,
    GradientModule,
    Rule,
    SyntheticGradients,
    TrueGradient,
)
from .state import TrainerState
from .synthetic import SyntheticGradientModule
from .trainer import Record, Stepper, seed_parts

#: Most seeds one batch trains (each is a full copy of the network and its state).
MAX_SEEDS = 64


def parse_seeds(text: str) -> list[int]:
    """'1,2,3' or a range '1-4' (or both: '1-3,7') to a list of distinct seeds."""
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, dash, high = part.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash and low else [int(part)]
        except ValueError:
            raise ConfigError("seeds", f"{part!r} is not a seed or a range like 1-4") from None
        seeds += span
    check_seeds(seeds)
    return seeds


def check_seeds(seeds: Sequence[int]) -> None:
    if not seeds:
        raise ConfigError("seeds", "needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ConfigError("seeds", "lists a seed twice")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError("seeds", f"at most {MAX_SEEDS} seeds in one batch")


def check_batchable(config: TrainConfig) -> None:
    """What batched seeds cannot do, as the ConfigError a user sees."""
    cfg = config.resolve()
    if cfg.execution != "sequential":
        raise ConfigError("seeds", "trains sequentially only (not with --execution pipelined)")
    if cfg.update_probability < 1.0:
        raise ConfigError(
            "seeds", "needs update_probability 1 (each seed would skip different layers)"
        )


#: The batching estimate's constants, fitted to `python -m bench.seeds --clock cpu` on the
#: 2-core Xeon (docs/benchmarks.md): seconds of a step's fixed Python and call overhead,
#: which a batch pays once for all its seeds, without and with diagnostics; seconds per
#: array element a step touches per seed (weights and modules updated, a batch's
#: activations), which a batch pays once per seed; and how much more per-seed work a
#: diagnosed step does than a plain one (the true gradient, the figures' reductions).
STEP_OVERHEAD = 15e-6
DIAGNOSIS_OVERHEAD = 40e-6
SECONDS_PER_ELEMENT = 3e-9
DIAGNOSIS_WORK = 0.7
#: How much faster a batch must be estimated to finish than separate processes.
BATCH_MARGIN = 0.1


def batch_speedup(cfg: ResolvedConfig, seeds: int) -> float:
    """Estimated seed-steps per second of `seeds` seeds batched over one seed alone, on one
    core: the fixed overhead of a step is paid once for every seed, the work on its arrays
    once per seed. Small nets gain most, wide ones nothing; diagnostics add fixed overhead
    as well as work, so a batch gains a little more where every step is diagnosed."""
    n_in, n_out = io_sizes(cfg)
    sizes = [n_in, *cfg.hidden, n_out]
    elements = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    elements += cfg.batch_size * sum(sizes)
    if cfg.uses_modules:
        condition = n_out if Method(cfg.method).conditioned else 0
        for width in cfg.hidden:
            module = [width + condition, *cfg.sg_hidden, width]
            elements += sum((a + 1) * b for a, b in itertools.pairwise(module))
            elements += cfg.batch_size * sum(module)
    diagnosed = 1.0 / cfg.diagnostics_every if cfg.diagnostics_every else 0.0
    overhead = STEP_OVERHEAD + DIAGNOSIS_OVERHEAD * diagnosed
    work = elements * SECONDS_PER_ELEMENT * (1.0 + DIAGNOSIS_WORK * diagnosed)
    return seeds * (overhead + work) / (overhead + seeds * work)


def batch_pays(cfg: ResolvedConfig, seeds: int, runs: int, cores: int) -> bool:
    """Whether a group of `seeds` seeds of `cfg` should train as one batch (one process)
    rather than one process per seed, in a sweep of `runs` runs in all on `cores` free
    cores: what the sweep (CLI and server) decides per group.

    Separate processes keep every core busy (the sweep takes ceil(runs / cores) runs'
    time); batched, each group is one job ((runs / seeds) jobs on the cores), each taking
    seeds / speedup runs' time. A batch must be estimated to finish at least BATCH_MARGIN
    sooner. A config a batch cannot train (check_batchable) never batches.
    """
    if seeds < 2 or cores < 1:
        return False
    try:
        check_batchable(cfg)
    except ConfigError:
        return False
    groups = max(runs // seeds, 1)
    batched = math.ceil(groups / cores) * seeds / batch_speedup(cfg, seeds)
    apart = math.ceil(runs / cores)
    return batched < apart * (1.0 - BATCH_MARGIN)


class SeedBatch(Stepper):
    """Trains `config` once per seed in `seeds` (its own seed ignored), all at once.

    `step()` returns one record per seed (None for a seed that has ended: diverged
    while the others go on); `summaries()` and `capture()` give one per seed. Each seed's
    bookkeeping is its own SeedBook (`members`), as a Trainer's is.

    >>> batch = SeedBatch(TrainConfig(dataset="addition", bits=4, examples=50, epochs=2), [1, 2])
    >>> steps = list(batch)
    >>> len(steps) == batch.total_steps, [s["seed"] for s in batch.summaries()]
    (True, [1, 2])
    """

    def __init__(
        self, config: TrainConfig, seeds: Sequence[int], dataset: Dataset | None = None
    ) -> None:
        check_seeds(seeds)
        check_batchable(config)
        cfg = config.resolve()
        if dataset is None and cfg.dataset == "mnist":  # the same files whatever the seed
            dataset = load_dataset(cfg)
        self.seeds = list(seeds)
        configs = [dataclasses.replace(cfg, seed=seed) for seed in self.seeds]
        parts = [seed_parts(c, dataset) for c in configs]
        # the shapes of one seed's state arrays (capture cuts the stack's to them)
        one = Stepper(configs[0], parts[0][1], parts[0][2])
        self._shapes = {name: a.shape for name, a in one._state_arrays().items()}
        net = Network.stacked([seed_net for _, seed_net, _ in parts])
        super().__init__(configs[0], net, stacked_rule([rule for _, _, rule in parts]))
        self.members = seed_books(configs, [data for data, _, _ in parts], net, self.rule)
        first = self.members[0]
        self.total_steps, self.steps_per_epoch = first.total_steps, first.steps_per_epoch
        self._x, self._y = stacked_data([m.data for m in self.members])
        rows = len(first.data.x_train)
        #: where each seed's rows begin in the stacked data (one take gathers every batch)
        self._offsets = np.arange(len(self.members))[:, None] * (
            rows if self._x is not first.data.x_train else 0
        )
        self._x_test, self._y_test = stacked_data([m.data for m in self.members], "test")
        self._rows = [np.empty(0, dtype=np.int64)] * len(self.members)
        self._frozen: dict[int, list[np.ndarray]] = {}
        self.step_count = 0
        self.elapsed = 0.0
        self.figures = StepFigures(net.sizes, cfg.activation)

    # -- running -----------------------------------------------------------
    @property
    def done(self) -> bool:
        return all(m.done for m in self.members)

    @property
    def status(self) -> str:
        """'running' while any seed trains; then 'finished' if any seed finished."""
        statuses = {m.status for m in self.members}
        if "running" in statuses:
            return "running"
        return "finished" if "finished" in statuses else statuses.pop()

    def __iter__(self) -> Iterator[list[Record | None]]:
        while not self.done:
            yield self.step()

    def step(self) -> list[Record | None]:
        """Train every seed still running on its next batch; each one's record (None for a
        seed that has ended)."""
        if self.done:
            raise RuntimeError("every seed has ended; no more steps")
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            records = self._step()
        self.elapsed += time.perf_counter() - start
        shared: Record = {"wall_time": self.elapsed, "unix_time": time.time()}
        if self._change:
            shared["config_change"], self._change = self._change, ""
        if self._events:
            shared["timeline"], shared["timeline_window"] = self._events, self._window
            self._events = []
        for member, record in zip(self.members, records, strict=True):
            if record is not None:
                member.elapsed = self.elapsed
                record.update(shared)
                member.epoch_fidelity.add(record)
        return records

    def _step(self) -> list[Record | None]:
        """The stacked step: batches -> forward -> the rule's backward -> update; then each
        running seed's record, as its own Trainer would make it."""
        cfg, net = self.config, self.net
        live = [not m.done for m in self.members]
        x, y, position = self._next_batches(live)
        step = self.step_count
        diagnose = cfg.diagnostics_every > 0 and step % cfg.diagnostics_every == 0

        forward_times: list[float] | None = [] if diagnose else None
        step_start = time.perf_counter()
        hs, logits, out = net.forward(x, layer_times=forward_times)
        assert logits is not None and out is not None
        keys, table, records = self._first_fields(
            step, live, net.out.loss(logits, out, y), logits, y
        )
        top_delta = net.out.delta(logits, out, y)
        truth = None
        if diagnose or self.rule.needs_true_gradient:
            truth = TrueGradient(*net.true_backward(hs, top_delta))
        backward = self.rule.backward(net, hs, top_delta, y, truth)
        finite = None
        if not diagnose:
            self._apply(hs, backward, None)
            self.rule.learn(backward, None)
            self._keep_frozen()
        else:
            assert truth is not None and forward_times is not None
            figure_keys, figures, finite = self._diagnosed_update(
                hs, backward, truth, (step_start, forward_times)
            )
            keys, table = keys + figure_keys, np.concatenate([table, figures], axis=1)
        self._fill_records(records, live, (step, keys, table), finite)
        self._end_of_step(records, step, position)
        return records

    def _fill_records(
        self,
        records: list[Record | None],
        live: list[bool],
        step_table: tuple[int, list[str], np.ndarray],
        finite: np.ndarray | None,
    ) -> None:
        """Every running seed's record from one (seeds, fields) table, a row per seed, under
        the keys a seed alone uses (a seed that diverged on its loss has its record); a
        seed whose weights are no longer finite diverges."""
        step, keys, table = step_table
        for s, row in enumerate(table_rows(table)):
            if live[s] and records[s] is None:
                records[s] = record = self._record(step, keys, row)
                if finite is not None and not finite[s]:
                    self._freeze(s, record)

    def _record(self, step: int, keys: list[str], row: list[float]) -> Record:
        """A seed's record of step `step`: its row of the step's table under `keys`."""
        record: Record = {"step": step, "epoch": step / self.steps_per_epoch, "wall_time": 0.0}
        record.update(zip(keys, row, strict=True))
        return record

    def _end_of_step(self, records: list[Record | None], step: int, position: int) -> None:
        """Each running seed's end of step (SeedBook.periodic, check_end), the held-out
        evaluations of every seed due one at once (`_evaluate`)."""
        members = self.members
        running: list[tuple[int, Record]] = [
            (s, r) for s, r in enumerate(records) if r is not None and not members[s].done
        ]  # not ended, nor diverged at this step
        for s, record in running:
            members[s].periodic(record, step, position, evaluate=False)
        due = [(s, r) for s, r in running if members[s].evaluation_due(step, position)]
        self._evaluate(due)
        for s, record in running:
            members[s].check_end(record)

    def _evaluate(self, due: list[tuple[int, Record]]) -> None:
        """The held-out evaluation of the seeds `due` (index, record), every seed of the
        stack in one pass: the numbers each seed alone finds (SeedBook.evaluate)."""
        if not due:
            return
        test = evaluate(self.net, self._x_test, self._y_test, self.members[0].data.bit_targets)
        columns = {f"test_{key}": np.asarray(value).tolist() for key, value in test.items()}
        for s, record in due:
            record.update({key: values[s] for key, values in columns.items()})

    def _diagnosed_update(
        self, hs: Pass, backward: Backward, truth: TrueGradient, forward: tuple[float, list[float]]
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """A diagnosed step's update, timed; every seed's figures (StepFigures.values)."""
        net = self.net
        before = self.figures.before(net.flat_weights, net.weight_starts, self.step_count)
        updates, starts, update_times = self._apply(hs, backward, None, timed=True)
        errors = self.rule.learn(backward, None)
        self._timeline(forward[0], forward[1], starts, update_times, updates)
        self._keep_frozen()
        return self.figures.values(
            [hs[k] for k in range(1, net.depth)],
            backward.signals,
            truth.gradients,
            errors,
            (net.flat_weights, net.weight_starts, updates, before),
            (forward[1], update_times),
            self.step_count,
        )

    def _next_batches(self, live: list[bool]) -> tuple[np.ndarray, np.ndarray, int]:
        """Each running seed's next batch from its own order, stacked (an ended seed's slot
        repeats its last batch); and the batch's position in the epoch."""
        position = 0
        for s, member in enumerate(self.members):
            if live[s]:
                self._rows[s], position = member.next_rows()
        self.step_count += 1
        rows = np.array(self._rows)  # (np.stack: the same array, at several times the cost)
        rows += self._offsets
        return self._x[rows], self._y[rows], position

    def _first_fields(
        self, step: int, live: list[bool], losses: np.ndarray, logits: np.ndarray, y: np.ndarray
    ) -> tuple[list[str], np.ndarray, list[Record | None]]:
        """The loss and batch accuracy of every seed, as keys and a (seeds, fields) table; a
        running seed whose loss is not finite diverges here, with its record (its weights
        stay as they were: `_freeze`); the others' records are made from the step's whole
        table (`_fill_records`)."""
        accuracy = batch_accuracy(logits, y, self.members[0].data.bit_targets)
        keys = ["loss", *accuracy]
        table = np.array([losses, *accuracy.values()]).T
        records: list[Record | None] = [None] * len(live)
        for s in np.flatnonzero(~np.isfinite(losses)).tolist():
            if live[s]:
                records[s] = record = self._record(step, keys, table[s].tolist())
                self._freeze(s, record)
        return keys, table, records

    def _freeze(self, s: int, record: Record) -> None:
        """Seed s diverged: it ends, and its slice of the network keeps what it holds now,
        as the seed alone would end (the stack goes on computing every slice)."""
        self.members[s].diverge(record)
        self._frozen[s] = [a[s].copy() for a in self._network_arrays()]

    def _keep_frozen(self) -> None:
        for s, kept in self._frozen.items():
            for array, values in zip(self._network_arrays(), kept, strict=True):
                array[s] = values

    def _network_arrays(self) -> list[np.ndarray]:
        net = self.net
        return [net.flat_weights, *(a for name in VECTORS for a in getattr(net, name))]

    def configure(self, **changes: Any) -> None:
        """Change live knobs of every seed (Trainer.configure)."""
        super().configure(**changes)
        for member in self.members:
            member.config = dataclasses.replace(member.config, **changes)

    # -- results -----------------------------------------------------------
    def summaries(self) -> list[dict[str, Any]]:
        """Each seed's summary (SeedBook.summary), `seconds` the whole batch's time."""
        return [m.summary() for m in self.members]

    def summary(self) -> dict[str, Any]:
        """{"seeds": each seed's summary, "seconds": the whole batch's training time}."""
        return {"seeds": self.summaries(), "seconds": self.elapsed}

    def capture(self) -> list[TrainerState]:
        """Each seed's complete state, as that seed trained alone would capture it."""
        return [self.capture_seed(s) for s in range(len(self.members))]

    def capture_seed(self, s: int) -> TrainerState:
        """Seed s's complete state (copies of its slice of the stack only)."""
        own = {}
        for name, value in self.named_state().items():
            shape = self._shapes[name]
            own[name] = (value[s].reshape(shape) if value.ndim > len(shape) else value).copy()
        member = self.members[s]
        own["order"] = member.order.copy()
        return TrainerState(member.state_meta(), own)

    def close(self) -> None:
        """Nothing to release (a sequential trainer)."""


def seed_books(
    configs: Sequence[ResolvedConfig], datasets: Sequence[Dataset], net: Network, rule: Rule
) -> list[SeedBook]:
    """Each seed's bookkeeping over its slice of the stacked network and modules (views)."""
    modules = getattr(rule, "modules", [])
    books = []
    for s, (cfg, data) in enumerate(zip(configs, datasets, strict=True)):
        book = SeedBook(cfg, data, net.seed(s))
        book.module_params = [[p[s] for p in getattr(m, "params", [])] for m in modules]
        books.append(book)
    return books


def stacked_rule(rules: Sequence[Rule]) -> Rule:
    """The seeds' rules as one: modules or feedback matrices stacked."""
    first = rules[0]
    if isinstance(first, SyntheticGradients):
        modules: list[GradientModule] = []
        for k in range(len(first.modules)):
            own = [r.modules[k] for r in rules if isinstance(r, SyntheticGradients)]
            assert all(isinstance(m, SyntheticGradientModule) for m in own)
            modules.append(SyntheticGradientModule.stacked(own))  # type: ignore[arg-type]
        return SyntheticGradients(modules, first.scale, conditioned=first.name == "cdni")
    if isinstance(first, FeedbackAlignment):
        feedback = [r.feedback for r in rules if isinstance(r, FeedbackAlignment)]
        return FeedbackAlignment([np.stack(parts) for parts in zip(*feedback, strict=True)])
    return Backprop()


def stacked_data(
    datasets: Sequence[Dataset], split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """A split's inputs and targets: one dataset's when every seed shares it; else, for
    training, every seed's one after another (seed s's row i at s * rows + i), and for
    the held-out split every seed's stacked (seeds, rows, width)."""
    x, y = f"x_{split}", f"y_{split}"
    if all(d is datasets[0] for d in datasets):
        return getattr(datasets[0], x), getattr(datasets[0], y)
    join = np.concatenate if split == "train" else np.array
    return join([getattr(d, x) for d in datasets]), join([getattr(d, y) for d in datasets])
