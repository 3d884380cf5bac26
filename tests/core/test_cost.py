"""The cost estimate against what real training processes hold (peak RSS)."""

from __future__ import annotations

from typing import Any

import pytest

from support.load import training_peak_rss
from synthgrad_core import TrainConfig
from synthgrad_core.cost import estimate, estimate_batch


@pytest.mark.parametrize(
    "config",
    [
        {"dataset": "addition"},
        {
            "dataset": "digits",
            "method": "cdni",
            "hidden": [1024, 1024],
            "batch_size": 512,
            "optimizer": "adam",
            "sg_optimizer": "adam",
            "sg_hidden": 1024,
        },
        {"dataset": "digits", "hidden": [2048, 2048, 2048], "optimizer": "momentum"},
        {"dataset": "digits", "method": "feedback_alignment", "hidden": [4096, 2048]},
    ],
    ids=["article", "wide-cdni-adam", "deep-momentum", "wide-fa"],
)
def test_the_memory_estimate_is_within_2x_of_the_measured_peak(config: dict[str, Any]) -> None:
    estimated = estimate(TrainConfig.from_dict(config).resolve()).memory_bytes
    measured = training_peak_rss(config)
    assert estimated / 2 <= measured <= estimated * 2, (estimated, measured)


def test_the_largest_config_the_bounds_allow_is_estimated_far_over_a_gib() -> None:
    # The config the adversarial test ran: it held 8 GB after setup and passed 12 GB.
    cfg = TrainConfig(
        dataset="digits",
        method="cdni",
        hidden=(4096,) * 8,
        batch_size=4096,
        sg_hidden=4096,
        optimizer="adam",
        sg_optimizer="adam",
    ).resolve()
    cost = estimate(cfg)
    assert cost.memory_bytes > 8 * 2**30
    assert cost.flops_per_step > 1e12  # ~minutes per step on one core


@pytest.mark.parametrize(
    ("config", "seeds"),
    [
        ({"dataset": "digits", "method": "dni"}, 16),
        (
            {
                "dataset": "digits",
                "method": "cdni",
                "hidden": [512, 512],
                "batch_size": 256,
                "optimizer": "adam",
            },
            8,
        ),
    ],
    ids=["digits-dni-16", "wide-cdni-8"],
)
def test_a_batchs_estimate_is_within_2x_of_its_measured_peak(
    config: dict[str, Any], seeds: int
) -> None:
    # A batch holds each seed's state: the server's budget counts it per seed, not once.
    cfg = TrainConfig.from_dict(config).resolve()
    estimated = estimate_batch(cfg, seeds).memory_bytes
    measured = training_peak_rss(config, steps=3, seeds=seeds)
    assert estimated / 2 <= measured <= estimated * 2, (estimated, measured)
    assert measured > estimate(cfg).memory_bytes  # what counting one run missed
    assert estimate_batch(cfg, 1) == estimate(cfg)
