"""Steps/s of the paper's FC DNI and cDNI step: synthgrad in float64 and float32 against the
same step written in PyTorch (CPU), interleaved rounds, medians.

The step (Jaderberg et al. 2016, MNIST FC): a 784-256-256-10 ReLU net with batch
normalisation, Adam (lr 1e-3), batches of 256, a synthetic-gradient module per hidden layer
of two hidden layers of 1024 with batch normalisation (Adam, lr 1e-4), its output layer at
zero; cDNI's modules also see the one-hot label. One step: forward pass, each module's
prediction, each layer's update from its synthetic gradient, each module's update towards
the gradient the layer above sends back through its pre-update weights (the top module's,
from the loss), the batch's loss and accuracy read out. No diagnostics (the engine's
`--diagnostics-every 0`).

The PyTorch step below is the same computation (float32, the framework's usual type):
modules predict per-example gradients B dLoss/dh, layers learn from them through a
surrogate loss whose gradient is the synthetic one, targets come from one backward pass
over the leaves between layers; Adam is `torch.optim.Adam(fused=True)` where the build
has it.

Both sides get the same number of threads (`--threads`, default 1: the machine is shared):
BLAS threads for numpy are fixed at process start, so the benchmark runs itself in a child
process with OPENBLAS_NUM_THREADS (and OMP/MKL) set, and PyTorch gets
`torch.set_num_threads`.

Usage: python -m bench.paper --speed [--threads N] [--rounds R] [--steps S] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import os
import pstats
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.data import Dataset

BATCH = 256
SIZES = (784, 256, 256, 10)
MODULE = (1024, 1024)
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def fake_mnist(rows: int, seed: int = 0) -> Dataset:
    """MNIST-shaped data: the step's cost does not depend on the pixels."""
    rng = np.random.default_rng(seed)
    x = rng.random((rows, SIZES[0]))
    y = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], rows)]
    return Dataset("mnist-shaped", x, y, x[:BATCH], y[:BATCH], bit_targets=False)


def paper_config(method: str, dtype: str) -> TrainConfig:
    return TrainConfig(
        dataset="mnist",
        data_path=".",
        method=method,
        hidden=SIZES[1:-1],
        activation="relu",
        loss="cross_entropy",
        batch_norm="on",
        optimizer="adam",
        learning_rate=1e-3,
        batch_size=BATCH,
        epochs=1,
        sg_hidden=MODULE,
        sg_batch_norm="on",
        sg_optimizer="adam",
        sg_learning_rate=1e-4,
        diagnostics_every=0,
        histogram_every=0,
        dtype=dtype,
    )


def engine_stepper(method: str, dtype: str, data: Dataset) -> Callable[[], None]:
    trainer = Trainer(paper_config(method, dtype), data)
    return lambda: None if trainer.done else trainer.step() and None


def torch_stepper(method: str, data: Dataset) -> Callable[[], None]:
    """The same step in PyTorch, float32."""
    import torch  # type: ignore[import-not-found]
    from torch import nn

    torch.manual_seed(0)
    x_all = torch.from_numpy(data.x_train.astype(np.float32))
    y_all = torch.from_numpy(data.y_train.astype(np.float32))
    labels_all = y_all.argmax(dim=1)
    widths = SIZES[1:-1]
    linears = [nn.Linear(a, b) for a, b in itertools.pairwise(SIZES)]
    norms = [nn.BatchNorm1d(w, momentum=0.1, eps=1e-5) for w in widths]
    condition = SIZES[-1] if method == "cdni" else 0

    def module(width: int) -> nn.Sequential:
        out = nn.Linear(MODULE[1], width)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        return nn.Sequential(
            nn.Linear(width + condition, MODULE[0]),
            nn.BatchNorm1d(MODULE[0], track_running_stats=False),
            nn.ReLU(),
            nn.Linear(MODULE[0], MODULE[1]),
            nn.BatchNorm1d(MODULE[1], track_running_stats=False),
            nn.ReLU(),
            out,
        )

    modules = [module(w) for w in widths]
    net_params = [p for m in [*linears, *norms] for p in m.parameters()]
    module_params = [p for m in modules for p in m.parameters()]

    def adam(params: list[Any], lr: float) -> Any:
        try:
            return torch.optim.Adam(params, lr=lr, fused=True)
        except (RuntimeError, TypeError):
            return torch.optim.Adam(params, lr=lr, foreach=True)

    net_opt, module_opt = adam(net_params, 1e-3), adam(module_params, 1e-4)
    rows = len(x_all)
    position = [0]

    def step() -> None:
        start = position[0]
        position[0] = (start + BATCH) % (rows - BATCH)
        x, y = x_all[start : start + BATCH], y_all[start : start + BATCH]
        labels = labels_all[start : start + BATCH]
        # forward, each layer's input a leaf: its gradient is what the layer above sends
        leaves, outputs = [], []
        h = x
        for linear, norm in zip(linears[:-1], norms, strict=True):
            h = torch.relu(norm(linear(h)))
            outputs.append(h)
            h = h.detach().requires_grad_()
            leaves.append(h)
        logits = linears[-1](h)
        loss = nn.functional.cross_entropy(logits, labels)
        # synthetic gradients (per example: B dLoss/dh), then one backward pass: each hidden
        # layer learns from its synthetic gradient (surrogate <h, g> / B), the top from
        # the loss; the leaves collect what each layer sends down (the modules' targets)
        predictions = []
        for m, h_k in zip(modules, leaves, strict=True):
            inputs = torch.cat([h_k.detach(), y], dim=1) if condition else h_k.detach()
            predictions.append(m(inputs))
        surrogate = loss
        for k, out in enumerate(outputs):
            surrogate = surrogate + (out * predictions[k].detach()).sum() / BATCH
        net_opt.zero_grad(set_to_none=True)
        surrogate.backward(inputs=[*net_params, *leaves])
        module_loss = sum(
            0.5 * ((p - leaf.grad * BATCH) ** 2).sum() / BATCH
            for p, leaf in zip(predictions, leaves, strict=True)
        )
        module_opt.zero_grad(set_to_none=True)
        module_loss.backward()  # type: ignore[union-attr]
        net_opt.step()
        module_opt.step()
        _ = loss.item(), float((logits.argmax(dim=1) == labels).float().mean())

    return step


def time_steps(step: Callable[[], None], steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per step of every variant, `rounds` rounds interleaved."""
    rows = BATCH * (args.rounds * args.steps + 2 * args.warmup + 8)
    data = fake_mnist(rows)
    variants: dict[str, Callable[[], None]] = {}
    for method in ("dni", "cdni"):
        for dtype in ("float64", "float32"):
            variants[f"{method} engine {dtype}"] = engine_stepper(method, dtype, data)
        try:
            variants[f"{method} torch float32"] = torch_stepper(method, data)
        except ImportError:
            print("PyTorch is not installed (pip install 'synthgrad[torch]'): engine only")
    for step in variants.values():
        time_steps(step, args.warmup)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, step in variants.items():
            times[name].append(time_steps(step, args.steps))
    return times


def report(times: dict[str, list[float]], args: argparse.Namespace) -> str:
    load = os.getloadavg()
    lines = [
        f"The paper's FC step ({'-'.join(map(str, SIZES))}, batch norm, Adam, batch {BATCH}, "
        f"modules {'x'.join(map(str, MODULE))} with batch norm), {args.threads} thread(s), "
        f"{args.rounds} interleaved rounds of {args.steps} steps, medians; "
        f"load average {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}.",
        "",
        "| rule | implementation | ms per step (median) | min | steps/s | vs PyTorch |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in times.items():
        method, implementation, dtype = name.split()
        median = statistics.median(values)
        base = times.get(f"{method} torch float32")
        ratio = f"{median / statistics.median(base):.2f}x" if base else "n/a"
        lines.append(
            f"| {method} | {implementation} {dtype} | {1000 * median:.1f} | "
            f"{1000 * min(values):.1f} | {1 / median:.2f} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def profile(args: argparse.Namespace) -> str:
    """Where the engine's float32 DNI step spends its time (cProfile, cumulative)."""
    step = engine_stepper("dni", "float32", fake_mnist(BATCH * (args.steps + 8)))
    time_steps(step, 2)
    profiler = cProfile.Profile()
    profiler.enable()
    time_steps(step, args.steps)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """The benchmark, in a child process with the thread count set if this one has not."""
    threads = str(args.threads)
    if any(os.environ.get(name) != threads for name in THREAD_VARIABLES):
        env = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, threads)}
        return subprocess.call([sys.executable, "-m", "bench.paper", *argv], env=env)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass
    table = report(measure(args), args)
    print(table)
    if args.profile:
        print(profile(args))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(table)
    return 0
