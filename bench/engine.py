"""Engine speed against a bare numpy loop (and PyTorch, if installed) of the same net.

Two networks:

- article: 24-128-64-12 sigmoid, 12-bit addition, 1000 examples, batch 10, SGD
  (the tutorial's setting; per-call overhead dominates);
- wide: 784-1024-1024-10 ReLU + softmax, batch 256, random data (matrix
  products dominate).

The bare loop is what one writes by hand for each rule: same data, initial
weights, batches and rule, loss and batch accuracy every step, no records. The
engine adds its per-step record and, every `diagnostics_every` steps ("off": none), the
true-gradient pass, gradient fidelity, weight statistics and per-layer timings;
its defaults also evaluate the held-out split at each epoch end and take a
weight histogram every 100 steps. Rounds interleave bare and engine runs so
drift on a shared machine hits both; figures are medians.

Usage: python -m bench.engine [--steps N] [--wide-steps N] [--rounds R] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from synthgrad_core import TrainConfig, Trainer
from synthgrad_core.config import METHODS
from synthgrad_core.data import Dataset

ARTICLE = TrainConfig(
    dataset="addition",
    bits=12,
    examples=1000,
    hidden=(128, 64),
    activation="sigmoid",
    batch_size=10,
    epochs=1000,
)

WIDE = TrainConfig(
    dataset="digits",  # replaced by random data below; the name only picks defaults
    hidden=(1024, 1024),
    activation="relu",
    loss="cross_entropy",
    batch_size=256,
    epochs=1000,
    learning_rate=0.01,
    sg_learning_rate=1e-4,  # 1024 inputs per module: the digits default (0.03) diverges
)


def wide_data() -> Dataset:
    """Random 784-dimensional inputs with 10 random classes: 2048 train, 256 held out."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2304, 784))
    y = np.eye(10)[rng.integers(0, 10, len(x))]
    return Dataset("random", x[:2048], y[:2048], x[2048:], y[2048:], bit_targets=False)


@dataclass(frozen=True)
class Case:
    name: str
    config: TrainConfig
    data: Callable[[], Dataset | None]


CASES = {
    "article": Case("article 24-128-64-12 sigmoid, batch 10", ARTICLE, lambda: None),
    "wide": Case("wide 784-1024-1024-10 relu, batch 256", WIDE, wide_data),
}


# -- the bare loop -------------------------------------------------------------
def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))  # as the tutorial writes it


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def bare_loop(case: Case, method: str, steps: int) -> float:
    """Steps/s of a hand-written numpy loop of `method` (linear synthetic-gradient modules)."""
    trainer = Trainer(dataclasses.replace(case.config, method=method), case.data())
    cfg = trainer.config
    x_all, y_all = trainer.data.x_train, trainer.data.y_train
    relu = cfg.activation == "relu"
    bits = trainer.data.bit_targets
    w = [p.copy() for p in trainer.net.weights]
    b = [p.copy() for p in trainer.net.biases]
    depth = len(w)
    n_out = trainer.data.n_outputs
    cond = n_out if method == "cdni" else 0
    m = [np.zeros((width + cond, width)) for width in cfg.hidden or ()]
    c = [np.zeros(width) for width in cfg.hidden or ()]
    feedback = [
        np.random.default_rng(k).standard_normal(wk.shape).T * wk.std() for k, wk in enumerate(w)
    ]
    lr, mlr, bs = cfg.learning_rate or 0.0, cfg.sg_learning_rate or 0.0, cfg.batch_size or 1
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x_all))
    per_epoch = int(np.ceil(len(x_all) / bs))
    start = time.perf_counter()
    with np.errstate(all="ignore"):  # as the engine: exp(-a) may overflow for a < -709
        for step in range(steps):
            pos = step % per_epoch
            if pos == 0:
                order = rng.permutation(len(x_all))
            idx = order[pos * bs : (pos + 1) * bs]
            x, y = x_all[idx], y_all[idx]
            n = len(x)
            hs = [x]
            for k in range(depth - 1):
                a = hs[-1] @ w[k] + b[k]
                hs.append(np.maximum(a, 0.0) if relu else sigmoid(a))
            a = hs[-1] @ w[-1] + b[-1]
            if bits:
                p = sigmoid(a)
                _loss = float(np.sum(np.logaddexp(0.0, a) - y * a) / n)
                _acc = float(((a > 0) == (y > 0.5)).mean())
            else:
                p = softmax(a)
                _loss = float(-np.sum(y * np.log(p + 1e-300)) / n)
                _acc = float((a.argmax(axis=1) == y.argmax(axis=1)).mean())
            deltas = [p - y] * depth
            targets = []
            for k in range(depth - 1, 0, -1):
                h = hs[k]
                if method in ("dni", "cdni"):
                    inputs = np.concatenate([h, y], axis=1) if cond else h
                    g = inputs @ m[k - 1] + c[k - 1]
                    # the module's target: what layer k sends back through its old weights
                    targets.append((k - 1, inputs, g, deltas[k] @ w[k].T))
                elif method == "feedback_alignment":
                    g = deltas[k] @ feedback[k]
                else:
                    g = deltas[k] @ w[k].T
                deltas[k - 1] = g * ((h > 0) if relu else h * (1 - h))
            for k in range(depth):
                w[k] -= lr * (hs[k].T @ deltas[k] / n)
                b[k] -= lr * (deltas[k].sum(axis=0) / n)
            for j, inputs, g, t in targets:
                e = g - t
                m[j] -= mlr * (inputs.T @ e / n)
                c[j] -= mlr * (e.sum(axis=0) / n)
    return steps / (time.perf_counter() - start)


def engine_loop(case: Case, method: str, steps: int, diagnostics_every: int) -> float:
    config = dataclasses.replace(case.config, method=method, diagnostics_every=diagnostics_every)
    trainer = Trainer(config, case.data())
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    if trainer.status == "diverged":
        raise SystemExit(f"{case.name} {method} diverged at step {trainer.diverged_at}")
    return steps / (time.perf_counter() - start)


def torch_loop(case: Case, steps: int) -> float | None:
    """Steps/s of the same net trained by backprop in PyTorch on the CPU (one thread)."""
    try:
        import torch  # type: ignore[import-not-found]
    except ImportError:
        return None
    torch.set_num_threads(1)
    trainer = Trainer(case.config, case.data())
    cfg = trainer.config
    x_all = torch.from_numpy(trainer.data.x_train)
    y_all = torch.from_numpy(trainer.data.y_train)
    layers = []
    for w, b in zip(trainer.net.weights, trainer.net.biases, strict=True):
        lin = torch.nn.Linear(*w.shape).double()
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
    act = torch.nn.ReLU() if cfg.activation == "relu" else torch.nn.Sigmoid()
    modules: list[torch.nn.Module] = []
    for lin in layers[:-1]:
        modules += [lin, act]
    net = torch.nn.Sequential(*modules, layers[-1])
    opt = torch.optim.SGD(net.parameters(), lr=cfg.learning_rate)
    bits = trainer.data.bit_targets
    bs = cfg.batch_size or 1
    per_epoch = -(-len(x_all) // bs)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(x_all), generator=gen)
    start = time.perf_counter()
    for step in range(steps):
        pos = step % per_epoch
        if pos == 0:
            order = torch.randperm(len(x_all), generator=gen)
        idx = order[pos * bs : (pos + 1) * bs]
        x, y = x_all[idx], y_all[idx]
        a = net(x)
        if bits:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(a, y, reduction="sum")
            loss = loss / len(x)
            _acc = float(((a > 0) == (y > 0.5)).double().mean())
        else:
            loss = torch.nn.functional.cross_entropy(a, y.argmax(dim=1))
            _acc = float((a.argmax(dim=1) == y.argmax(dim=1)).double().mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        _loss = loss.item()
    return steps / (time.perf_counter() - start)


# -- running -------------------------------------------------------------------
def measure(case: Case, steps: int, rounds: int, methods: tuple[str, ...]) -> list[dict]:
    print(f"\n{case.name}: {steps} steps, {rounds} rounds, bare and engine interleaved")
    print(
        f"{'rule':<19} {'diagnostics':>12} {'bare steps/s':>13} {'engine steps/s':>15} "
        f"{'ratio':>6} {'(rounds)':>11}"
    )
    rows = []
    for method in methods:
        for every in (0, 1, 10):  # 0: no diagnosed steps, the bare loop's own work
            bare, eng = [], []
            for _ in range(rounds):
                bare.append(bare_loop(case, method, steps))
                eng.append(engine_loop(case, method, steps, every))
            # Each round's engine run against the bare run just before it: drift cancels.
            ratios = [e / b for b, e in zip(bare, eng, strict=True)]
            ratio = statistics.median(ratios)
            rows.append({"case": case.name, "method": method, "every": every, "ratio": ratio})
            print(
                f"{method:<19} {f'every {every}' if every else 'off':>12} "
                f"{statistics.median(bare):>13,.1f} "
                f"{statistics.median(eng):>15,.1f} {ratio:>6.2f} "
                f"{min(ratios):>5.2f}-{max(ratios):.2f}",
                flush=True,
            )
    torch_rates = [torch_loop(case, steps) for _ in range(rounds)]
    if torch_rates[0] is None:
        print("PyTorch: not installed, no comparison (pip install '.[torch]' to add it)")
    else:
        t = statistics.median(r for r in torch_rates if r is not None)
        bare = statistics.median(bare_loop(case, "backprop", steps) for _ in range(rounds))
        eng = statistics.median(engine_loop(case, "backprop", steps, 10) for _ in range(rounds))
        print(
            f"PyTorch backprop (1 thread, float64): {t:,.1f} steps/s; "
            f"bare numpy / PyTorch {bare / t:.2f}, engine (diagnostics every 10) / PyTorch "
            f"{eng / t:.2f}"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3000, help="steps per article round")
    parser.add_argument("--wide-steps", type=int, default=20, help="steps per wide round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="backprop and dni only")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args(argv)
    methods = ("backprop", "dni") if args.quick else METHODS
    print(f"numpy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    rows = []
    for name in args.cases:
        case = CASES[name]
        rows += measure(
            case, args.steps if name == "article" else args.wide_steps, args.rounds, methods
        )
    for every, label in ((10, "every 10"), (0, "off")):
        ratios = [r["ratio"] for r in rows if r["every"] == every]
        print(
            f"engine / bare with diagnostics {label}: worst {min(ratios):.2f}, "
            f"median {statistics.median(ratios):.2f} (target >= 0.95)"
        )


if __name__ == "__main__":
    main()
