"""Trainer: one run of one learning rule, stepped one batch at a time, one record per step.

The four rules share the forward pass and differ only in the signal each hidden
layer receives in place of the true gradient dLoss/dh_i:

- backprop: the true gradient, by the full backward pass;
- dni / cdni: a synthetic gradient predicted by the layer's own module from
  h_i (and, for cdni, the targets); the module learns from the signal the
  layer above sends back through its pre-update weights (bootstrapping);
- feedback_alignment: the error sent back through fixed random matrices B_i
  instead of W_i^T.

On diagnostics steps the trainer also computes the true gradient at the
pre-step weights on the same batch and reports how the rule's signal compares
with it (gradient fidelity), together with weight statistics.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .bookkeeping import EVAL_CHUNK, EXPLOSION_FACTOR, SeedBook, batch_accuracy
from .config import LIVE_FIELDS, ConfigError, Method, ResolvedConfig, TrainConfig
from .data import Dataset, in_dtype, load_dataset
from .diagnostics import fidelity, layer_stats, saturation, square_sums
from .nn import Activations, Network, Parameter, Pass, batch_sum, init_weights
from .optim import Optimizer, make_optimizer
from .rules import (
    Applies,
    Backprop,
    Backward,
    FeedbackAlignment,
    GradientModule,
    Rule,
    SyntheticGradients,
    TrueGradient,
)
from .state import TrainerState, check_branch
from .synthetic import SyntheticGradientModule, module_loss

Record = dict[str, Any]

#: Keys of a record that measure time and so differ between otherwise identical runs.
TIMING_KEYS_PREFIXES = ("wall_time", "unix_time", "t_forward_", "t_update_", "timeline")

#: Per-hidden-layer and per-layer diagnostics fields (record keys add `_h<i>` / `_l<i>`).
HIDDEN_FIELDS = ("cos", "rel_err", "norm_ratio", "saturated", "module_loss")
LAYER_FIELDS = ("w_mean", "w_std", "w_norm", "w_max", "update_ratio", "t_forward", "t_update")

#: What a trainer may change in place while it trains (Trainer.configure): the fields
#: marked live in config.py.
LIVE_KNOBS = LIVE_FIELDS

__all__ = ["EVAL_CHUNK", "EXPLOSION_FACTOR", "Stepper", "Trainer", "batch_accuracy", "seed_parts"]


class Stepper:
    """The parts of a training step shared by one seed (Trainer) and a stack of seeds
    (synthgrad_core.seeds.SeedBatch): the network, its optimiser and rule, the update,
    the timeline of a diagnosed step, live knobs and the state's arrays."""

    def __init__(self, config: ResolvedConfig, net: Network, rule: Rule) -> None:
        """`net` and `rule`: one seed's, or a stack of seeds' (their arrays stacked)."""
        self.config = config
        self.net = net
        self.params = network_params(net)
        self.optimizer: Optimizer = make_optimizer(
            config.optimizer, self.params, config.learning_rate, config.momentum
        )
        self.rule = rule
        self.method = config.method
        self._origin = time.perf_counter()  # the timeline's zero
        self._events: list[list[Any]] = []  # the last diagnosed step's timeline
        self._window: list[float] = []
        self._change = ""  # live knob changes the next record reports

    def configure(self, **changes: Any) -> None:
        """Change live knobs (LIVE_KNOBS) in place, between steps; the next record carries
        `config_change` saying what changed. Raises ConfigError naming a field out of bounds
        or not changeable while training."""
        for name in changes:
            if name not in LIVE_KNOBS:
                raise ConfigError(
                    name, f"cannot change while training; live knobs: {', '.join(LIVE_KNOBS)}"
                )
        new = dataclasses.replace(self.config, **changes)  # validates
        said = [
            f"{name} {getattr(self.config, name):g} → {value:g}"
            for name, value in changes.items()
            if getattr(self.config, name) != value
        ]
        self.config = new
        self.optimizer.learning_rate = new.learning_rate
        if isinstance(self.rule, SyntheticGradients):
            self.rule.scale = new.sg_scale
            for module in self.rule.modules:
                if isinstance(module, SyntheticGradientModule):
                    module.optimizer.learning_rate = new.sg_learning_rate
        if said:
            self._change = "; ".join(filter(None, [self._change, ", ".join(said)]))

    def _mark_change(self, record: Record) -> None:
        if self._change:
            record["config_change"], self._change = self._change, ""

    def _apply(
        self,
        hs: Pass,
        backward: Backward,
        applies: Applies,
        lo: int = 0,
        hi: int | None = None,
        timed: bool = False,
    ) -> tuple[list[np.ndarray | None], list[float], list[float]]:
        """The optimiser's update of layers lo..hi-1 (those that apply it this step), and of
        their batch normalisation's scale and shift.

        Timed: what each layer's weight update subtracted (None: skipped), when it started
        and how long it took; untimed, three empty lists.
        """
        hi = self.net.depth if hi is None else hi
        if not timed and not self.net.batch_norm:  # the every-step path
            self._apply_plain(hs, backward.deltas, applies, lo, hi)
            return [], [], []
        update_dense, deltas = self.optimizer.update_dense, backward.deltas
        layers, norm = self.net.layers, self.net.batch_norm
        updates: list[np.ndarray | None] = []
        starts: list[float] = []
        times: list[float] = []
        for k in range(lo, hi):
            applied = applies is None or applies[k]
            t0 = time.perf_counter() if timed else 0.0
            update = update_dense(layers[k], hs[k], deltas[k]) if applied else None
            if norm and applied and k in backward.norm_deltas:
                self._apply_norm(k, hs, backward.norm_deltas[k])
            if timed:
                updates.append(update)
                starts.append(t0)
                times.append(time.perf_counter() - t0)
        return updates, starts, times

    def _apply_plain(
        self, hs: Pass, deltas: Activations, applies: Applies, lo: int, hi: int
    ) -> None:
        update_dense, layers = self.optimizer.update_dense, self.net.layers
        for k in range(lo, hi):
            if applies is None or applies[k]:
                update_dense(layers[k], hs[k], deltas[k])

    def _apply_norm(self, k: int, hs: Pass, norm_delta: np.ndarray) -> None:
        """Hidden layer k's normalisation scale and shift."""
        n = norm_delta.shape[-2]
        norm = self.net.norms[k]
        self.optimizer.update(norm.scale, batch_sum(norm_delta * hs.norm[k][0]) / n)
        self.optimizer.update(norm.shift, batch_sum(norm_delta) / n)

    def _timeline(
        self,
        start: float,
        forward_times: list[float],
        update_starts: list[float],
        update_times: list[float],
        updates: list[np.ndarray | None],
    ) -> None:
        """The step's work as timeline events: a lane per layer, one after another (locked),
        and the shared backward work (backward pass or synthetic gradients, module updates)
        on the lane after them. Same format as the pipelined trainer's."""
        end = time.perf_counter()
        # Every boundary, then one vectorised rounding (18 calls of round() took ~25 us).
        stamps = [start]
        for duration in forward_times:
            stamps.append(stamps[-1] + duration)
        stamps.append(update_starts[0])
        for t0, duration in zip(update_starts, update_times, strict=True):
            stamps += [t0, t0 + duration]
        stamps.append(end)
        r = np.round(np.array(stamps) - self._origin, 6).tolist()
        depth, n = self.net.depth, len(forward_times)
        events: list[list[Any]] = [[k, "f", r[k], r[k + 1]] for k in range(n)]
        events.append([depth, "b", r[n], r[n + 1]])
        for k, update in enumerate(updates):
            events.append([k, "x" if update is None else "u", r[n + 2 + 2 * k], r[n + 3 + 2 * k]])
        events.append([depth, "m", r[-2], r[-1]])
        self._events = events
        self._window = [r[0], r[-1]]

    def named_state(self) -> dict[str, np.ndarray]:
        """Every array a captured state holds but the data order, by its name in the state
        (synthgrad_core.state): the live arrays, named after the parameters that hold them."""
        arrays = {f"net.{name}": a for name, a in self.net.named_arrays().items()}
        arrays |= {f"opt.{name}": a for name, a in self.optimizer.named_arrays().items()}
        rule = self.rule
        if isinstance(rule, SyntheticGradients):
            for k, module in enumerate(rule.modules):
                if isinstance(module, SyntheticGradientModule):
                    arrays |= {f"module.{k}.{n}": a for n, a in module.named_arrays().items()}
        if isinstance(rule, FeedbackAlignment):
            arrays |= {f"feedback.{k}": b for k, b in enumerate(rule.feedback)}
        return arrays

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Copies of every array a captured state holds but the data order, by name."""
        return {name: a.copy() for name, a in self.named_state().items()}


class Trainer(Stepper, SeedBook):
    """Trains one network with one rule; `step()` runs a batch and returns its record.

    The step's arithmetic is the Stepper's; the seed's bookkeeping (data order, end-of-epoch
    checks, summary, state metadata) its SeedBook's.

    >>> trainer = Trainer(TrainConfig(dataset="addition", bits=4, examples=50, epochs=2))
    >>> records = list(trainer)
    >>> len(records) == trainer.total_steps, trainer.status
    (True, 'finished')
    """

    def __init__(
        self,
        config: TrainConfig,
        dataset: Dataset | None = None,
        modules: list[GradientModule] | None = None,
    ) -> None:
        cfg = config.resolve()
        data, net, rule = seed_parts(cfg, dataset, modules)
        Stepper.__init__(self, cfg, net, rule)
        SeedBook.__init__(self, cfg, data, net)
        self.module_params = [getattr(m, "params", []) for m in getattr(rule, "modules", [])]
        self.true_gradients: Activations = {}
        # Record keys of the diagnostics, built once (they are the same every step).
        self._keys = (
            [tuple(f"{name}_h{i}" for name in HIDDEN_FIELDS) for i in range(1, net.depth)],
            [tuple(f"{name}_l{i}" for name in LAYER_FIELDS) for i in range(1, net.depth + 1)],
        )
        # the step whose update left the weights with these square sums (diagnosed steps)
        self._square: tuple[int, list[float]] | None = None

    # -- running -----------------------------------------------------------
    def __iter__(self) -> Iterator[Record]:
        while not self.done:
            yield self.step()

    def step(self) -> Record:
        """Train on the next batch and return the step's record."""
        if self.done:
            raise RuntimeError(f"the run is {self.status}; no more steps")
        start = time.perf_counter()
        with np.errstate(all="ignore"):
            record = self._step()
        self.elapsed += time.perf_counter() - start
        self._mark_change(record)
        record["wall_time"] = self.elapsed
        record["unix_time"] = time.time()  # when the step ended: for latency, absolute plots
        if self._events:  # diagnosed steps: when each layer worked (synthgrad_core.pipeline)
            record["timeline"], record["timeline_window"] = self._events, self._window
            self._events = []
        self.epoch_fidelity.add(record)
        return record

    def _step(self) -> Record:
        """batch -> forward -> the rule's backward -> update -> record."""
        cfg, net = self.config, self.net
        x, y, position = self.next_batch()
        step = self.step_count
        diagnose = cfg.diagnostics_every > 0 and step % cfg.diagnostics_every == 0

        forward_times: list[float] | None = [] if diagnose else None
        step_start = time.perf_counter()
        hs, logits, out = net.forward(x, layer_times=forward_times)
        record: Record = {"step": step, "epoch": step / self.steps_per_epoch, "wall_time": 0.0}
        top_delta = self._output(record, logits, out, y)
        if top_delta is None:
            return self.diverge(record)

        truth = None
        if diagnose or self.rule.needs_true_gradient:
            truth = TrueGradient(*net.true_backward(hs, top_delta))
            self.true_gradients = truth.gradients
        backward = self.rule.backward(net, hs, top_delta, y, truth)
        applies = self.layers_that_update(net.depth)
        if not diagnose:
            self._apply(hs, backward, applies)
            self.rule.learn(backward, applies)
            self.periodic(record, step, position)
            return self.check_end(record)
        assert truth is not None and forward_times is not None
        before = self._before_square(step)
        updates, starts, update_times = self._apply(hs, backward, applies, timed=True)
        errors = self.rule.learn(backward, applies)
        self._timeline(step_start, forward_times, starts, update_times, updates)
        fill_fidelity(record, backward.signals, truth.gradients)
        square = self._layer_diagnostics(
            record, hs, errors, (updates, before), (forward_times, update_times), 0, net.depth
        )
        self._square = (step, square)
        if not all(math.isfinite(record[f"w_norm_l{k + 1}"]) for k in range(net.depth)):
            return self.diverge(record)
        self.periodic(record, step, position)
        return self.check_end(record)

    def _output(
        self, record: Record, logits: np.ndarray | None, out: np.ndarray | None, y: np.ndarray
    ) -> np.ndarray | None:
        """A batch's loss and accuracy into `record`; the per-example output delta, or None
        when the loss is not finite (the run diverged)."""
        net = self.net
        assert logits is not None and out is not None
        loss = net.out.loss(logits, out, y)
        record["loss"] = loss
        record.update(batch_accuracy(logits, y, self.data.bit_targets))
        if not math.isfinite(loss):
            return None
        delta: np.ndarray = net.out.delta(logits, out, y)
        return delta

    def _layer_diagnostics(
        self,
        record: Record,
        hs: Activations,
        errors: Activations,
        updates: tuple[list[np.ndarray | None], list[float]],
        times: tuple[list[float], list[float]],
        lo: int,
        hi: int,
    ) -> list[float]:
        """Saturation and module loss of the hidden layers of lo..hi-1, weight statistics
        and times of its layers (`updates`: what each subtracted, square sums before); the
        layers' square sums now."""
        activation = self.net.activation_name
        hidden = range(lo, min(hi, self.net.depth - 1))
        saturations = {k: saturation(hs[k + 1], activation) for k in hidden}
        losses = {k: module_loss(errors[k]) for k in hidden if k in errors}
        applied, before_square_sums = updates
        flat, starts = self.net.weight_segment(lo, hi)
        square = square_sums(flat, starts)
        stats = layer_stats(flat, starts, applied, before_square_sums, square)
        self._fill_layers(record, saturations, losses, stats, times, lo)
        return square

    def _before_square(self, step: int) -> list[float]:
        """Each layer's square sum before this step's update: the previous step's norms when
        it was diagnosed (nothing changes the weights between two steps), else summed now."""
        if self._square is not None and self._square[0] == step - 1:
            return self._square[1]
        return square_sums(*self.net.weight_segment(0, self.net.depth))

    def _fill_layers(
        self,
        record: Record,
        saturations: dict[int, float],
        losses: dict[int, float],
        stats: list[tuple[float, float, float, float, float]],
        times: tuple[list[float], list[float]],
        lo: int,
    ) -> None:
        """The per-layer figures of a diagnosed step into the record, under their keys."""
        hidden_keys, layer_keys = self._keys
        for k, value in saturations.items():
            record[hidden_keys[k][3]] = value
        for k, value in losses.items():
            record[hidden_keys[k][4]] = value
        forward_times, update_times = times
        for i, layer_values in enumerate(stats):
            mean_key, std_key, norm_key, max_key, ratio_key, forward_key, update_key = layer_keys[
                lo + i
            ]
            (
                record[mean_key],
                record[std_key],
                record[norm_key],
                record[max_key],
                record[ratio_key],
            ) = layer_values
            record[forward_key] = forward_times[i]
            record[update_key] = update_times[i]

    # -- state ---------------------------------------------------------------
    def capture(self) -> TrainerState:
        """The trainer's complete state between two steps (synthgrad_core.state): a trainer
        restored from it and stepped with the same config makes the same records."""
        arrays = self._state_arrays()
        arrays["order"] = self.order.copy()
        return TrainerState(self.state_meta(), arrays)

    def restore(self, state: TrainerState) -> None:
        """Take up a captured state (before the first step). The config may differ from the
        captured one only where a branch may (state.CHANGEABLE; ConfigError otherwise); parts
        this config cannot use (another rule's modules, another optimiser's moments) are left
        as a fresh trainer has them."""
        if self.step_count:
            raise RuntimeError("restore() comes before the first step")
        captured = state.config
        check_branch(captured, self.config, state.step)
        for name, array in self.net.named_arrays().items():
            array[...] = state.arrays[f"net.{name}"]
        if captured.optimizer == self.config.optimizer:
            self.optimizer.load_state(state.part("opt"))
        self._restore_rule(state, captured)
        self.load_meta(state.meta, state.arrays["order"])

    def _restore_rule(self, state: TrainerState, captured: ResolvedConfig) -> None:
        rule = self.rule
        if isinstance(rule, SyntheticGradients) and captured.method == self.method:
            same_optimizer = captured.sg_optimizer == self.config.sg_optimizer
            for k, module in enumerate(rule.modules):
                if isinstance(module, SyntheticGradientModule):
                    module.load_state(state.part(f"module.{k}"), same_optimizer)
        elif isinstance(rule, FeedbackAlignment) and captured.method == self.method:
            for k, b in enumerate(rule.feedback):
                b[...] = state.arrays[f"feedback.{k}"]
        elif self.method != captured.method:
            self.notes.append(
                f"branched from {captured.method} at step {state.step}: "
                + (
                    "fresh synthetic-gradient modules"
                    if Method(self.method).uses_modules
                    else "the weights as they were"
                )
            )

    def close(self) -> None:
        """Release what the trainer holds (worker threads of a pipelined one)."""


def network_params(net: Network) -> list[Parameter]:
    """What the network's optimiser updates (Network.parameters)."""
    return net.parameters()


def record_keys(cfg: ResolvedConfig) -> list[str]:
    """Every key a record of `cfg` may hold, in a stable order (CSV columns, field checks)."""
    depth = len(cfg.hidden) + 1
    bits = cfg.dataset == "addition"
    keys = ["step", "epoch", "wall_time", "unix_time", "loss", "accuracy"]
    keys += ["exact_accuracy"] * bits + ["test_loss", "test_accuracy"]
    keys += ["test_exact_accuracy"] * bits
    if cfg.diagnostics_every:
        keys += diagnostics_keys(depth, modules=cfg.uses_modules)
    if cfg.histogram_every:
        keys += [f"hist_l{i}" for i in range(1, depth + 1)]
    if cfg.diagnostics_every or cfg.execution == "pipelined":
        keys += ["timeline", "timeline_window"]
    return [*keys, "config_change"]


def diagnostics_keys(depth: int, modules: bool) -> list[str]:
    """The keys of a diagnosed step's per-layer figures (module_loss only with modules)."""
    hidden = [f for f in HIDDEN_FIELDS if f != "module_loss" or modules]
    keys = [f"{f}_h{i}" for i in range(1, depth) for f in hidden]
    return keys + [f"{f}_l{i}" for i in range(1, depth + 1) for f in LAYER_FIELDS]


def fill_fidelity(record: Record, signals: Activations, true_gradients: Activations) -> None:
    """Cosine, relative error and norm ratio of each signal against the true gradient."""
    fill_figures(
        record,
        {
            k: fidelity(signal, true_gradients[k])
            for k, signal in signals.items()
            if k in true_gradients
        },
    )


def fill_figures(record: Record, figures: dict[int, tuple[float, float, float]]) -> None:
    """Each hidden layer's fidelity figures (cosine, relative error, norm ratio) into the record."""
    for k, (cos, rel_err, norm_ratio) in figures.items():
        record[f"cos_h{k + 1}"] = cos
        record[f"rel_err_h{k + 1}"] = rel_err
        record[f"norm_ratio_h{k + 1}"] = norm_ratio


def seed_parts(
    cfg: ResolvedConfig,
    dataset: Dataset | None = None,
    modules: list[GradientModule] | None = None,
) -> tuple[Dataset, Network, Rule]:
    """One seed's data, network and rule, drawn from its seed (`modules`: given ones)."""
    data = in_dtype(dataset, cfg.dtype) if dataset is not None else load_dataset(cfg)
    init_rng = np.random.default_rng([cfg.seed, 1])
    sizes = [data.n_inputs, *cfg.hidden, data.n_outputs]
    net = Network(
        sizes, cfg.activation, cfg.loss, cfg.init, init_rng, cfg.batch_norm == "on", cfg.dtype
    )
    return data, net, make_rule(cfg, sizes, data.n_outputs, init_rng, modules)


def without_timing(record: Record) -> Record:
    """The record minus the fields that measure time (for comparing runs)."""
    return {k: v for k, v in record.items() if not k.startswith(TIMING_KEYS_PREFIXES)}


def make_rule(
    cfg: ResolvedConfig,
    sizes: list[int],
    n_outputs: int,
    rng: np.random.Generator,
    modules: list[GradientModule] | None = None,
) -> Rule:
    """The config's learning rule, with its modules or feedback matrices drawn from `rng`."""
    if cfg.uses_modules:
        condition = n_outputs if Method(cfg.method).conditioned else 0
        if modules is None:
            modules = [
                SyntheticGradientModule(
                    width,
                    condition,
                    cfg.sg_hidden,
                    cfg.sg_optimizer,
                    cfg.sg_learning_rate,
                    cfg.momentum,
                    rng,
                    cfg.sg_batch_norm == "on",
                    cfg.dtype,
                )
                for width in cfg.hidden
            ]
        return SyntheticGradients(modules, cfg.sg_scale, conditioned=Method(cfg.method).conditioned)
    if cfg.method == "feedback_alignment":
        # Feedback matrices B_k stand where W_k^T stands in backprop; same scale as W_k.
        fixed, _ = init_weights(sizes, cfg.init, cfg.activation, rng)
        return FeedbackAlignment([np.ascontiguousarray(w.T, dtype=cfg.dtype) for w in fixed])
    return Backprop()
