"""Reproduce docs/results.md: every rule on both tasks, seeds 1-3, default settings.

Usage: python scripts/results.py   (prints the Markdown tables; ~2 minutes on one core)
Each row is what `synthgrad train --dataset D --method M --seed S --json` reaches.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from synthgrad_core import TrainConfig, Trainer

TASKS = {"addition": 300, "digits": 50}
METHODS = ("backprop", "dni", "cdni", "feedback_alignment")
SEEDS = (1, 2, 3)


def fmt(values: list[float]) -> str:
    spread = f"{min(values):.3f}-{max(values):.3f}"
    return f"{statistics.mean(values):.3f} ({spread})"


def main() -> None:
    print(
        "| task | rule | epochs | train accuracy, mean (min-max) | held-out accuracy | "
        "cos(signal, true) h1 / h2, last epoch | relative error h1 / h2 |"
    )
    print("|---|---|---|---|---|---|---|")
    for dataset, epochs in TASKS.items():
        for method in METHODS:
            train, test, cos1, cos2, err1, err2 = [], [], [], [], [], []
            for seed in SEEDS:
                trainer = Trainer(
                    TrainConfig(dataset=dataset, method=method, epochs=epochs, seed=seed)
                )
                records = list(trainer)
                summary = trainer.summary()
                train.append(summary["accuracy"])
                test.append(summary["test_accuracy"])
                last = records[-trainer.steps_per_epoch :]

                def mean(key: str, rows: list[dict] = last) -> float:
                    vals = [r[key] for r in rows if r.get(key) == r.get(key)]
                    return statistics.mean(vals) if vals else float("nan")

                cos1.append(mean("cos_h1"))
                cos2.append(mean("cos_h2"))
                err1.append(mean("rel_err_h1"))
                err2.append(mean("rel_err_h2"))
            print(
                f"| {dataset} | {method} | {epochs} | {fmt(train)} | {fmt(test)} | "
                f"{statistics.mean(cos1):.2f} / {statistics.mean(cos2):.2f} | "
                f"{statistics.mean(err1):.2f} / {statistics.mean(err2):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
