"""Named recipes: one list for the runs page's preset buttons, `synthgrad presets` and
`synthgrad train --preset NAME`.

Each preset is a label, an optional note, and the runs it starts: a config (fields of
TrainConfig; the rest take the dataset's defaults) with a `name`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .config import ConfigError

#: The paper's fully connected MNIST setup (Jaderberg et al. 2016; bench.paper): ReLU
#: layers of 256 with batch norm, Adam, batches of 256, modules of two hidden layers of 1024
#: with batch norm; float32 and diagnostics every 10 steps so three runs train side by side.
PAPER_MNIST: dict[str, Any] = {
    "dataset": "mnist",
    "hidden": (256, 256),
    "activation": "relu",
    "loss": "cross_entropy",
    "batch_norm": "on",
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 256,
    "epochs": 20,
    "sg_hidden": (1024, 1024),
    "sg_batch_norm": "on",
    "sg_optimizer": "adam",
    "sg_learning_rate": 0.0001,
    "dtype": "float32",
    "diagnostics_every": 10,
}

PRESETS: dict[str, dict[str, Any]] = {
    "article-backprop": {
        "label": "The article's task: backprop",
        "runs": [
            {"name": "The article's task: backprop", "dataset": "addition", "method": "backprop"}
        ],
    },
    "article-dni": {
        "label": "The article's task: DNI",
        "runs": [{"name": "The article's task: DNI", "dataset": "addition", "method": "dni"}],
    },
    "dni-addition": {
        "label": "The article's task: DNI, a recipe that learns",
        "note": "Unconditioned DNI that learns 8-bit addition: ReLU, batch norm, Adam, and "
        "modules with a hidden layer of 256 (docs/results.md, the search). The article's "
        "recipe, beside it, stays at chance.",
        "runs": [
            {
                "name": "The article's task: DNI, a recipe that learns",
                "dataset": "addition",
                "method": "dni",
                "activation": "relu",
                "hidden": (256, 128),
                "batch_norm": "on",
                "optimizer": "adam",
                "learning_rate": 0.001,
                "sg_optimizer": "adam",
                "sg_learning_rate": 0.0003,
                "sg_hidden": (256,),
                "batch_size": 32,
                "epochs": 300,
            }
        ],
    },
    "article-cdni": {
        "label": "The article's task: cDNI",
        "runs": [{"name": "The article's task: cDNI", "dataset": "addition", "method": "cdni"}],
    },
    "lecture-dni": {
        "label": "Lecture: DNI, long enough to watch",
        "note": "240,000 steps of DNI on the article's task: a few minutes on a laptop, time to "
        "pause and point at the diagram.",
        "runs": [
            {
                "name": "Lecture: DNI on addition",
                "dataset": "addition",
                "method": "dni",
                "epochs": 3000,
            }
        ],
    },
    "paper-mnist": {
        "label": "The paper's MNIST net",
        "note": "Starts 3 runs on MNIST (backprop, DNI and cDNI) with the paper's fully "
        "connected net: 784-256-256-10 with batch norm, Adam, batches of 256, modules of two "
        "hidden layers of 1024, in float32; opens them side by side. Offered where the "
        "server's data folder holds MNIST.",
        "runs": [
            {"name": f"The paper's MNIST net: {label}", **PAPER_MNIST, "method": method}
            for method, label in (("backprop", "backprop"), ("dni", "DNI"), ("cdni", "cDNI"))
        ],
    },
    "digits-all": {
        "label": "Digits: all four rules",
        "note": "Starts 4 runs on the digits, one per rule (backprop, DNI, cDNI, feedback "
        "alignment), with the settings in the form, and opens them side by side.",
        "runs": [
            {"name": f"Digits: {method}", "dataset": "digits", "method": method}
            for method in ("backprop", "dni", "cdni", "feedback_alignment")
        ],
    },
}


def offered(datasets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The presets whose runs use only `datasets` (what a server without MNIST offers)."""
    return {
        key: preset
        for key, preset in PRESETS.items()
        if all(run.get("dataset", "addition") in datasets for run in preset["runs"])
    }


def preset_config(name: str) -> dict[str, Any]:
    """The config of a one-run preset; ConfigError (field "preset") for an unknown name or a
    preset that starts several runs."""
    preset = PRESETS.get(name)
    if preset is None:
        raise ConfigError("preset", f"no preset {name!r}; `synthgrad presets` lists them")
    if len(preset["runs"]) != 1:
        raise ConfigError(
            "preset",
            f"{name} starts {len(preset['runs'])} runs; `synthgrad sweep` trains several "
            "(or pick a preset of one run)",
        )
    config = dict(preset["runs"][0])
    config.pop("name")
    return config


def describe() -> list[str]:
    """One line per preset: its name, label and what it sets."""
    lines = []
    for name, preset in PRESETS.items():
        runs = preset["runs"]
        settings = ", ".join(f"{k}={v}" for k, v in runs[0].items() if k != "name")
        what = settings if len(runs) == 1 else f"{len(runs)} runs, e.g. {settings}"
        lines.append(f"{name:18} {preset['label']}: {what}")
    return lines
