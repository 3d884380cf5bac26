"""The bare loop of bench.seeds_floor is the engine's DNI step: its weights after some steps
are the engine's (one seed and stacked), so the floor it measures is of the same work."""

import dataclasses

import numpy as np
import pytest

from bench.seeds_floor import CASES, Bare
from synthgrad_core import Trainer


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("seeds", [[3], [1, 2, 5]])
def test_bare_loop_trains_as_the_engine(name: str, seeds: list[int]) -> None:
    steps = 130  # past an epoch's end (80 steps on 8-bit addition, 45 on digits): fresh orders
    loop = Bare(name, seeds)
    loop.run(steps, diagnose=True)
    for index, seed in enumerate(seeds):
        trainer = Trainer(dataclasses.replace(CASES[name], seed=seed, diagnostics_every=0))
        for _ in range(steps):
            trainer.step()
        module = trainer.rule.modules  # type: ignore[attr-defined]
        pairs = [*zip(trainer.net.weights, loop.w, strict=True)]
        pairs += [
            (mod.layers[0].weight.value, mine) for mod, mine in zip(module, loop.m, strict=True)
        ]
        for engine, bare in pairs:
            mine = bare[index] if loop.stacked else bare
            np.testing.assert_allclose(mine, engine, rtol=0, atol=1e-9)
