"""How the command line reads config fields: flag names, value parsers, one-line errors."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line on stderr and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def flag_name(name: str) -> str:
    """The command-line flag of a config field: learning_rate -> --learning-rate."""
    return "--" + name.replace("_", "-")


def widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated whole numbers like 128,64; got {text!r}"
        ) from None


#: How the command line reads each kind of config field.
FLAG_TYPES: dict[str, Any] = {
    "int": int,
    "float": float,
    "choice": str,
    "path": str,
    "widths": widths,
}
