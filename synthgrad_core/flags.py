"""How the command line reads config fields: flag names, text to values, one-line errors.

A flag's text becomes the value JSON would carry (a number, a list of widths, text) and
nothing more: whether that value is allowed is config.check_value's answer alone, so the
command line refuses what the API refuses, with the same words.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line on stderr and exits 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def flag_name(name: str) -> str:
    """The command-line flag of a config field: learning_rate -> --learning-rate."""
    return "--" + name.replace("_", "-")


#: A number as JSON writes one (ASCII digits only: Python's int() also reads "١" and "1_0").
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def number(text: str) -> Any:
    """The number `text` writes (an int for "2", a float for "2.0", "1e400" or "nan"), or
    the text itself when it writes none (the validator then says it is not a number)."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text) or text.lower() in _NON_FINITE:
        return float(text)  # "1e400" is inf, as JSON readers make it
    return text


def widths(text: str) -> Any:
    """Comma-separated widths ("128,64"; "0", "none" or "" for no layers) as a tuple, or the
    text itself when a part is not a number."""
    if text.strip().lower() in ("", "none"):
        return ()
    parts = [number(part.strip()) for part in text.split(",") if part.strip()]
    if any(isinstance(part, str) for part in parts):
        return text
    return tuple(parts)


#: How the command line reads each kind of config field.
FLAG_TYPES: dict[str, Any] = {
    "int": number,
    "float": number,
    "choice": str,
    "path": str,
    "widths": widths,
}
