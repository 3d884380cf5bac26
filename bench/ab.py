"""Engine speed of this checkout against another (a `git worktree` of an older commit).

Each measurement is a fresh process that trains one rule for `--steps` steps with
the engine of one tree and prints its steps/s; the two trees alternate, so drift
on a shared machine hits both alike. Prints per rule the median steps/s of each
tree and the median of the paired ratios (this tree / the other).

Usage: git worktree add /tmp/before <commit>; python -m bench.ab --tree /tmp/before
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys, time
from synthgrad_core import TrainConfig, Trainer
cfg = TrainConfig(dataset="addition", method=sys.argv[1], epochs=10_000,
                  diagnostics_every=int(sys.argv[3]))
trainer = Trainer(cfg)
for _ in range(200):  # warm up
    trainer.step()
steps = int(sys.argv[2])
start = time.perf_counter()
for _ in range(steps):
    trainer.step()
print(json.dumps(steps / (time.perf_counter() - start)))
"""


def measure(tree: Path, method: str, steps: int, every: int) -> float:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, method, str(steps), str(every)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", required=True, help="the other checkout")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--every", type=int, default=10, help="diagnostics_every")
    parser.add_argument(
        "--rules", default="backprop,dni,cdni,feedback_alignment", help="comma-separated"
    )
    args = parser.parse_args(argv)
    other = Path(args.tree).resolve()
    print(f"this tree {HERE} against {other}: article net, diagnostics every {args.every}")
    print(f"{'rule':<20} {'this steps/s':>13} {'other steps/s':>14} {'ratio':>6}  (rounds)")
    for method in args.rules.split(","):
        mine, theirs, ratios = [], [], []
        for i in range(args.rounds):
            pair = [(HERE, mine), (other, theirs)]
            if i % 2:  # alternate which tree goes first
                pair.reverse()
            for tree, sink in pair:
                sink.append(measure(tree, method, args.steps, args.every))
            ratios.append(mine[-1] / theirs[-1])
        print(
            f"{method:<20} {statistics.median(mine):>13,.1f} {statistics.median(theirs):>14,.1f} "
            f"{statistics.median(ratios):>6.2f}  {min(ratios):.2f}-{max(ratios):.2f}"
        )


if __name__ == "__main__":
    main()
