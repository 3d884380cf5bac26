"""What a config will cost before it runs: memory of its training process and work per step.

The estimate counts what the engine allocates: the data set (in the run's dtype), the
network's weights with their gradients, the true gradients the diagnostics
compare against, the optimiser's state, the synthetic-gradient modules (or the
fixed feedback matrices), the activations of one batch, and the evaluation
chunk. `PROCESS_BASE` is the interpreter with numpy and the engine loaded.
`tests/core/test_cost.py` checks the estimate against the peak RSS of real
training processes (within 2x either way).

A batch of seeds (synthgrad_core.seeds) holds one interpreter and, for MNIST, one
copy of the files; everything else (each seed's data set, net, modules and
batch arrays) once per seed: `estimate_batch`. Measured (docs/reliability.md):
peak RSS grows by the per-seed part of the estimate for each seed added.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .config import Method, ResolvedConfig, io_sizes, planned_steps, split_sizes

#: Resident memory of a training process before its data and net: Python, numpy, the engine.
PROCESS_BASE = 40 * 2**20
#: Arrays of one batch's width kept per layer through a step: inputs, pre-activations,
#: outputs, deltas, true deltas, synthetic gradients, and the temporaries of each.
BATCH_COPIES = 10
#: Copies of the weights: weights, this step's update (or gradient), true gradients.
WEIGHT_COPIES = 3
#: Optimiser state per weight.
OPTIMIZER_STATE = {"sgd": 0, "momentum": 1, "adam": 2}
#: Rows of one evaluation chunk (trainer.EVAL_CHUNK) and arrays kept per layer for it.
EVAL_ROWS, EVAL_COPIES = 32, 3
#: Multiply-adds per weight per example: forward, backward, and the true gradient
#: the diagnostics compute; each is 2 floating-point operations.
FLOPS_PER_WEIGHT = {"forward": 2, "backward": 4, "truth": 4}

#: Seconds of Python per step whatever the net (measured: ~0.5 ms for the article's net).
STEP_OVERHEAD = 0.5e-3

#: Bytes of a number of each dtype.
FLOAT_BYTES = {"float64": 8, "float32": 4}


@dataclass(frozen=True)
class Cost:
    """Estimated peak memory of the run's process and floating-point work."""

    memory_bytes: int
    flops_per_step: float
    steps: int

    def seconds(self, flops_per_second: float) -> float:
        """Training time at a sustained rate of `flops_per_second`, plus Python's overhead."""
        return self.steps * (self.flops_per_step / flops_per_second + STEP_OVERHEAD)


def estimate(cfg: ResolvedConfig) -> Cost:
    """The cost of training `cfg` (a resolved config), without allocating anything."""
    n_in, n_out = io_sizes(cfg)
    nbytes = FLOAT_BYTES[cfg.dtype]
    sizes = [n_in, *cfg.hidden, n_out]
    weights = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    n_train, n_test = split_sizes(cfg)
    data = (n_train + n_test) * (n_in + n_out) * nbytes
    if cfg.dataset == "mnist":
        data *= 2  # the file's bytes and their float copy coexist while loading
    net = weights * nbytes * (WEIGHT_COPIES + OPTIMIZER_STATE[cfg.optimizer])
    modules = extra = 0
    if cfg.uses_modules:
        condition = n_out if Method(cfg.method).conditioned else 0
        for width in cfg.hidden:
            module_sizes = [width + condition, *cfg.sg_hidden, width]
            modules += sum((a + 1) * b for a, b in itertools.pairwise(module_sizes))
            extra += cfg.batch_size * sum(cfg.sg_hidden) * BATCH_COPIES // 2
    elif cfg.method == "feedback_alignment":
        extra_weights = sum(a * b for a, b in itertools.pairwise(sizes[1:]))
        net += extra_weights * nbytes
    module_bytes = modules * nbytes * (WEIGHT_COPIES + OPTIMIZER_STATE[cfg.sg_optimizer])
    batch = cfg.batch_size * sum(sizes) * nbytes * BATCH_COPIES + extra * nbytes
    evaluation = EVAL_ROWS * sum(sizes) * nbytes * EVAL_COPIES + (n_train + n_test) * n_out * nbytes
    memory = PROCESS_BASE + data + net + module_bytes + batch + evaluation

    per_example: float = FLOPS_PER_WEIGHT["forward"] + FLOPS_PER_WEIGHT["backward"]
    if cfg.diagnostics_every:
        per_example += FLOPS_PER_WEIGHT["truth"] / cfg.diagnostics_every
    flops = cfg.batch_size * (weights * per_example + modules * 6)
    return Cost(int(memory), float(flops), planned_steps(cfg))


def shared_bytes(cfg: ResolvedConfig) -> int:
    """What the seeds of one batch share: the interpreter and, for MNIST, the loaded files
    (the other data sets are drawn per seed)."""
    if cfg.dataset != "mnist":
        return PROCESS_BASE
    n_in, n_out = io_sizes(cfg)
    n_train, n_test = split_sizes(cfg)
    return PROCESS_BASE + 2 * (n_train + n_test) * (n_in + n_out) * FLOAT_BYTES[cfg.dtype]


def estimate_batch(cfg: ResolvedConfig, seeds: int) -> Cost:
    """The cost of training `cfg` for `seeds` seeds as one batch: the shared part once,
    the rest of a run's memory and all of its work once per seed (one seed: `estimate`)."""
    one = estimate(cfg)
    shared = shared_bytes(cfg)
    memory = shared + seeds * (one.memory_bytes - shared)
    return Cost(memory, one.flops_per_step * seeds, one.steps)


def describe_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'; for messages."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
