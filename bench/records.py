"""What a step's record costs to encode where the product trains it (records.dumps).

Every step of every run (and every seed of a batch) is encoded to JSON in its training
process before it travels to the server (app.execution.session.entry). This times
`records.dumps` on real records of each case (diagnosed, plain, and diagnosed with an
undefined figure) against the encoding it replaced, in the same process, rounds
alternating: a json_safe copy of the record, then json.dumps of the copy.

Usage: python -m bench.records [--rounds R] [--number N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import timeit
from typing import Any

from synthgrad_core import TrainConfig, Trainer, dumps, json_safe

CASES = {
    "8-bit addition, dni": TrainConfig(dataset="addition", bits=8, method="dni", epochs=40),
    "digits, dni": TrainConfig(dataset="digits", method="dni", epochs=1000),
}


def copied(record: dict[str, Any]) -> str:
    """The encoding before: a json_safe copy, then json.dumps of it."""
    return json.dumps(json_safe(record), allow_nan=False, separators=(",", ":"))


def records(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """A diagnosed record, a plain one, and a diagnosed one holding an undefined figure (a
    dni run's first steps: its modules start at zero, so the cosine has no value)."""
    trainer = Trainer(dataclasses.replace(config, seed=1, diagnostics_every=2))
    steps = [trainer.step() for _ in range(12)]

    def undefined(record: dict[str, Any]) -> bool:
        return any(isinstance(v, float) and not math.isfinite(v) for v in record.values())

    diagnosed = [r for r in steps if "cos_h1" in r]
    return {
        "diagnosed": next(r for r in reversed(diagnosed) if not undefined(r)),
        "plain": next(r for r in reversed(steps) if "cos_h1" not in r),
        "with NaN": next(r for r in diagnosed if undefined(r)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args(argv)
    print(f"load {os.getloadavg()[0]:.1f}; us per record, medians of {args.rounds} rounds")
    print(f"{'case':<22} {'record':<10} {'keys':>5} {'before':>8} {'now':>8} {'x':>6}")
    for name, config in CASES.items():
        for kind, record in records(config).items():
            assert dumps(record) == copied(record)  # the same text
            before, now = [], []
            for _ in range(args.rounds):
                before.append(timeit.timeit(lambda r=record: copied(r), number=args.number))
                now.append(timeit.timeit(lambda r=record: dumps(r), number=args.number))
            b = statistics.median(before) / args.number * 1e6
            n = statistics.median(now) / args.number * 1e6
            ratio = statistics.median(x / y for x, y in zip(before, now, strict=True))
            print(f"{name:<22} {kind:<10} {len(record):>5} {b:>8.1f} {n:>8.1f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
