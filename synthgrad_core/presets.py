"""Named recipes: one list for the runs page's preset buttons, `synthgrad presets` and
`synthgrad train --preset NAME`.

Each preset is a label, an optional note, what to expect (`expect`: what a room watching
it will see, from the measured figures in docs/results.md), and the runs it starts: a
config (fields of TrainConfig; the rest take the dataset's defaults) with a `name`.
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
        "expect": "Learns: bit accuracy reaches 1.0 on the training set and about 0.95 held "
        "out (seeds 1-3). The cosine is exactly 1: backprop's signal is the true gradient.",
        "runs": [
            {"name": "The article's task: backprop", "dataset": "addition", "method": "backprop"}
        ],
    },
    "article-dni": {
        "label": "The article's task: DNI",
        "expect": "This is meant to fail: accuracy stays at chance (0.5 a bit). Watch the "
        "bottom layer's cosine turn against the true gradient within a few epochs; its "
        "module predicts almost nothing (relative error 1).",
        "runs": [{"name": "The article's task: DNI", "dataset": "addition", "method": "dni"}],
    },
    "dni-addition": {
        "label": "The article's task: DNI, a recipe that learns",
        "expect": "Learns (about 0.95 held out): the top layer's cosine rises first, the "
        "bottom layer's follows once the top module gives it useful targets, and that is "
        "when held-out accuracy climbs.",
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
        "expect": "Learns (about 0.99 held out, better than backprop): the modules see the "
        "labels. Its cosine ends low (0.2-0.4) because the true gradient gets tiny once the "
        "training set is fitted.",
        "runs": [{"name": "The article's task: cDNI", "dataset": "addition", "method": "cdni"}],
    },
    "lecture-dni": {
        "label": "Lecture: DNI, long enough to watch",
        # Measured with `synthgrad train --preset lecture-dni --json` (seed 0, 2026-12-06):
        # 55 s of CPU; loss 5.37 at step 1, 38.7 at the end, held-out bit accuracy 0.506.
        "note": "240,000 steps of DNI on the article's task: about a minute of one core for "
        "the engine alone, longer in the server, which records and streams every step (the "
        "run page shows its ETA). Time to pause and point at the diagram.",
        "expect": "This is meant to fail; watch the bottom layer's cosine: it turns against "
        "the true gradient within a few epochs and stays near or below zero, so accuracy "
        "stays at chance (0.5 a bit) while the loss climbs from about 5 to about 39. The run "
        "still ends as finished: a rule can fail without diverging.",
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
        "expect": "All three learn; backprop fastest. In a measured table of this net's first "
        "4 epochs (docs/results.md, modules without batch norm there) backprop held out about "
        "2% error, cDNI about 3%, DNI about 11%: cDNI's bottom-layer cosine climbs towards 0.5 "
        "while DNI's stays near 0.",
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
        "expect": "All four learn the digits (0.95-0.97 held out). DNI's cosine stays near "
        "0 and it learns anyway: its top layer learns from the true loss.",
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
    """Per preset: its name, label and what it sets, then what to expect, indented."""
    lines = []
    for name, preset in PRESETS.items():
        runs = preset["runs"]
        settings = ", ".join(f"{k}={v}" for k, v in runs[0].items() if k != "name")
        what = settings if len(runs) == 1 else f"{len(runs)} runs, e.g. {settings}"
        lines.append(f"{name:18} {preset['label']}: {what}")
        if preset.get("expect"):
            lines.append(f"{'':18} expect: {preset['expect']}")
    return lines


def expectation(name: str, config: dict[str, Any]) -> str | None:
    """What to expect of a run started from a preset: the preset whose run has this name
    and these settings (the run's other fields are free), else None."""
    for preset in PRESETS.values():
        for run in preset["runs"]:
            if run["name"] == name and all(
                _plain(config.get(k)) == _plain(v) for k, v in run.items() if k != "name"
            ):
                return str(preset["expect"]) if preset.get("expect") else None
    return None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value
