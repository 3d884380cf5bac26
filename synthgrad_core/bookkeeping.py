"""One seed's bookkeeping, the same whether it trains alone (Trainer) or in a stack (SeedBatch).

The arithmetic of a step (forward, the rule's backward, the update) is the Stepper's;
everything a run keeps per seed around it is a `SeedBook`'s: the order of its data, the
end-of-epoch work (explosion watch, held-out evaluation, weight histograms), when it ends
(finished or diverged), its summary, and the metadata of its captured state.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import ResolvedConfig
from .data import Dataset
from .diagnostics import histogram
from .divergence import Watch, explain
from .nn import Network
from .records import EpochFidelity
from .rules import Applies

Record = dict[str, Any]

#: Rows per forward pass when evaluating a whole split.
EVAL_CHUNK = 32
#: A run's loss "exploded" when an epoch's mean batch loss exceeds this multiple of
#: the untrained network's loss (the first step's): flagged even if it stays finite.
EXPLOSION_FACTOR = 1000.0


class SeedBook:
    """One seed's data order, end-of-epoch checks, end of run, summary and state metadata.

    `net` is what it evaluates: the seed's own network, or its slice of a stack of seeds
    (Network.seed), so what it reports is what the stack trained.

    >>> from synthgrad_core import TrainConfig, load_dataset
    >>> from synthgrad_core.trainer import seed_parts
    >>> cfg = TrainConfig(dataset="addition", bits=4, examples=50).resolve()
    >>> data, net, _rule = seed_parts(cfg)
    >>> book = SeedBook(cfg, data, net)
    >>> rows, position = book.next_rows()
    >>> len(rows) == cfg.batch_size, position, book.step_count
    (True, 0, 1)
    """

    def __init__(self, config: ResolvedConfig, data: Dataset, net: Network) -> None:
        self.config = config
        self.data = data
        self.net = net
        self.order_rng = np.random.default_rng([config.seed, 2])
        #: which layers update on a step below update_probability 1
        self.async_rng = np.random.default_rng([config.seed, 3])
        self.batch_size = config.batch_size
        self.steps_per_epoch = math.ceil(len(data.x_train) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step_count = 0
        self.status = "running"
        self.diverged_at: int | None = None
        #: why it diverged, in words and figures (synthgrad_core.divergence), once it has
        self.divergence: dict[str, Any] | None = None
        self.watch = Watch()  # the last finite figures, for that explanation
        #: each synthetic-gradient module's parameters (views for a seed of a stack), which
        #: the explanation of a divergence checks; set by the trainer that owns them
        self.module_params: list[list[np.ndarray]] = []
        #: the step ending the first epoch whose mean loss exploded (EXPLOSION_FACTOR)
        self.exploded_at: int | None = None
        self.first_loss: float | None = None
        self.epoch_loss = 0.0
        self.elapsed = 0.0
        #: what the user should know about how this run trains (shown by the CLI, the page)
        self.notes: list[str] = []
        # the summary's last-epoch fidelity means, over the keys records of this net hold
        self.epoch_fidelity = EpochFidelity(
            [
                f"{name}_h{i}"
                for i in range(1, len(config.hidden) + 1)
                for name in ("cos", "rel_err")
            ]
        )
        #: this epoch's order of the training rows
        self.order = np.arange(len(data.x_train))

    @property
    def done(self) -> bool:
        return self.status != "running"

    # -- data order ----------------------------------------------------------
    def next_rows(self) -> tuple[np.ndarray, int]:
        """The training rows of the next batch (a fresh order each epoch) and its position
        in the epoch; counts the step."""
        _epoch, position = divmod(self.step_count, self.steps_per_epoch)
        if position == 0:
            self.order = self.order_rng.permutation(len(self.data.x_train))
        self.step_count += 1
        size = self.batch_size
        return self.order[position * size : (position + 1) * size], position

    def next_batch(self) -> tuple[np.ndarray, np.ndarray, int]:
        """The next batch's inputs and targets and its position in the epoch."""
        rows, position = self.next_rows()
        return self.data.x_train[rows], self.data.y_train[rows], position

    def layers_that_update(self, depth: int) -> Applies:
        """Which layers apply their update this step (None: all of them)."""
        p = self.config.update_probability
        if p >= 1.0:
            return None
        return list(self.async_rng.random(depth) < p)

    # -- the end of a step ---------------------------------------------------
    def periodic(self, record: Record, step: int, position: int, evaluate: bool = True) -> None:
        """The explosion watch; weight histograms and held-out evaluations when due (a
        stack of seeds evaluates every seed at once: `evaluate` False)."""
        cfg = self.config
        self.watch.seen(record)
        self.watch_explosion(record["loss"], step, position)
        if cfg.histogram_every and step % cfg.histogram_every == 0:
            for k, w in enumerate(self.net.weights):
                record[f"hist_l{k + 1}"] = histogram(w)
        if evaluate and self.evaluation_due(step, position):
            test = self.evaluate(self.data.x_test, self.data.y_test)
            record.update({f"test_{key}": value for key, value in test.items()})

    def evaluation_due(self, step: int, position: int) -> bool:
        """Whether step `step` (at `position` in its epoch) evaluates the held-out split."""
        every = self.config.test_every
        return position == self.steps_per_epoch - 1 or bool(every and step % every == 0)

    def watch_explosion(self, loss: float, step: int, position: int) -> None:
        if self.first_loss is None:
            self.first_loss = loss
        self.epoch_loss += loss
        if position == self.steps_per_epoch - 1:
            mean = self.epoch_loss / self.steps_per_epoch
            self.epoch_loss = 0.0
            if self.exploded_at is None and mean > EXPLOSION_FACTOR * max(self.first_loss, 1e-12):
                self.exploded_at = step

    def check_end(self, record: Record) -> Record:
        """After the last step: finished, or diverged if a weight is no longer finite."""
        if record["step"] >= self.total_steps:
            if not all(np.isfinite(w).all() for w in self.net.weights):
                return self.diverge(record)
            self.status = "finished"
        return record

    def diverge(self, record: Record) -> Record:
        """The run ends here, diverged; `divergence` says why."""
        self.status = "diverged"
        self.diverged_at = record["step"]
        self.divergence = explain(
            record, self.watch, self.config, self.net.weights, self.module_params
        )
        return record

    # -- measuring -------------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Loss and accuracy of the current weights on a whole split.

        The forward pass runs in chunks of EVAL_CHUNK rows: measured on the 2-core
        Xeon, one large matrix product slowed the next ~80 training steps by ~10%
        (docs/benchmarks.md). Loss and accuracy then take one pass over all logits.
        """
        return evaluate(self.net, x, y, self.data.bit_targets)

    def summary(self) -> dict[str, Any]:
        """Final numbers on the whole training and held-out splits."""
        train = self.evaluate(self.data.x_train, self.data.y_train)
        test = self.evaluate(self.data.x_test, self.data.y_test)
        out: dict[str, Any] = {
            "method": self.config.method,
            "dataset": self.data.name,
            "seed": self.config.seed,
            "steps": self.step_count,
            "seconds": self.elapsed,
            "loss": train["loss"],
            "accuracy": train["accuracy"],
            "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
            "status": self.status,
        }
        if self.data.bit_targets:
            out["exact_accuracy"] = train["exact_accuracy"]
            out["test_exact_accuracy"] = test["exact_accuracy"]
        optional = {
            "diverged_at": self.diverged_at,
            "divergence": self.divergence,
            "exploded_at": self.exploded_at,
            "notes": list(self.notes) or None,
            "fidelity": self.epoch_fidelity.means() or None,
        }
        return out | {key: value for key, value in optional.items() if value is not None}

    # -- state -----------------------------------------------------------------
    def state_meta(self) -> dict[str, Any]:
        """The metadata of a captured state (synthgrad_core.state), as JSON."""
        return {
            "config": self.config.as_dict(),
            "step": self.step_count,
            "status": self.status,
            "diverged_at": self.diverged_at,
            "exploded_at": self.exploded_at,
            "first_loss": self.first_loss,
            "epoch_loss": self.epoch_loss,
            "elapsed": self.elapsed,
            "rng": {
                "order": self.order_rng.bit_generator.state,
                "async": self.async_rng.bit_generator.state,
            },
            "fidelity": self.epoch_fidelity.state(),
        }

    def load_meta(self, meta: dict[str, Any], order: np.ndarray) -> None:
        """Take up `state_meta()` of a captured state and its epoch's order."""
        self.order = order.copy()
        self.step_count = meta["step"]
        # A run that finished its epochs goes on when the branch gives it more.
        more = meta["status"] == "finished" and self.step_count < self.total_steps
        self.status = "running" if more else meta["status"]
        self.diverged_at, self.exploded_at = meta["diverged_at"], meta["exploded_at"]
        self.first_loss, self.epoch_loss = meta["first_loss"], meta["epoch_loss"]
        self.elapsed = meta["elapsed"]
        self.order_rng.bit_generator.state = meta["rng"]["order"]
        self.async_rng.bit_generator.state = meta["rng"]["async"]
        self.epoch_fidelity.load_state(meta["fidelity"])


def evaluate(net: Network, x: np.ndarray, y: np.ndarray, bit_targets: bool) -> dict[str, Any]:
    """Loss and accuracy of `net` on a whole split (SeedBook.evaluate): floats, or one per
    seed of a stack of seeds (stacked weights; `x` and `y` stacked or shared by all)."""
    rows = x.shape[-2]
    with np.errstate(all="ignore"):
        chunks = [
            net.logits(x[..., i : i + EVAL_CHUNK, :]) for i in range(0, max(rows, 1), EVAL_CHUNK)
        ]
        logits = np.concatenate(chunks, axis=-2)
        result = {"loss": net.out.loss(logits, net.out.output(logits), y)}
    result.update(batch_accuracy(logits, y, bit_targets))
    return result


def batch_accuracy(logits: np.ndarray, y: np.ndarray, bit_targets: bool) -> dict[str, Any]:
    """Accuracy (and exact accuracy, for bit targets) of a batch's logits: floats, or one
    per seed for a stack of batches."""
    # count_nonzero / size: the same numbers as .mean(), at a fraction of its call overhead.
    stacked = logits.ndim > 2
    if bit_targets:
        correct = (logits > 0.0) == (y > 0.5)
        if stacked:  # bool sums: count_nonzero with an axis is twice as slow
            return {
                "accuracy": np.add.reduce(correct, axis=(-2, -1)) / correct[0].size,
                "exact_accuracy": np.add.reduce(np.logical_and.reduce(correct, axis=-1), axis=-1)
                / correct.shape[-2],
            }
        return {
            "accuracy": int(np.count_nonzero(correct)) / correct.size,
            "exact_accuracy": int(np.count_nonzero(correct.all(axis=1))) / len(correct),
        }
    hits = logits.argmax(axis=-1) == y.argmax(axis=-1)
    if stacked:
        return {"accuracy": np.add.reduce(hits, axis=-1) / hits.shape[-1]}
    return {"accuracy": int(np.count_nonzero(hits)) / len(y)}
