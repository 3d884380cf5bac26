"""The `synthgrad` command: `train` (the engine, in the terminal) and `serve` (the dashboard)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

# Small-matrix training gains nothing from BLAS threads and a server's event loop
# stalls behind them: one thread, set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse

from synthgrad_core.cli import add_presets_command, add_train_command, presets, run_command, train
from synthgrad_core.flags import OneLineParser
from synthgrad_core.sweep import add_sweep_command, sweep


def serve(args: argparse.Namespace) -> int:
    from app.server import run_server
    from app.settings import Settings

    overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    try:
        settings = Settings.from_env(os.environ, **overrides)
    except ValueError as exc:
        print(f"synthgrad serve: error: {exc}", file=sys.stderr)
        return 2
    run_server(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="synthgrad", description="synthgrad: learning without backprop, live."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_train_command(sub)
    add_sweep_command(sub)
    add_presets_command(sub)
    serve_cmd = sub.add_parser("serve", help="start the dashboard server")
    serve_cmd.add_argument("--host", help="address to bind (env SYNTHGRAD_HOST; 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, help="port (env SYNTHGRAD_PORT; 8000)")
    serve_cmd.add_argument("--db", help="SQLite file (env SYNTHGRAD_DB; data/synthgrad.sqlite3)")
    serve_cmd.add_argument(
        "--max-runs",
        type=int,
        dest="max_concurrent_runs",
        help="runs training at once (env SYNTHGRAD_MAX_RUNS; cores)",
    )
    serve_cmd.add_argument(
        "--executor",
        choices=("process", "thread", "ray"),
        help="where runs train: own processes, server threads or Ray actors (env "
        "SYNTHGRAD_EXECUTOR; process; ray joins SYNTHGRAD_RAY_ADDRESS or starts a local Ray)",
    )
    serve_cmd.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        help="how much the server logs (env SYNTHGRAD_LOG_LEVEL; info)",
    )
    serve_cmd.add_argument(
        "--admin-token-file",
        help="file holding the token that controls every run (env SYNTHGRAD_ADMIN_TOKEN_FILE, "
        "or SYNTHGRAD_ADMIN_TOKEN; a token on the command line would show in `ps`)",
    )
    serve_cmd.add_argument(
        "--data-dir",
        "--data-root",
        dest="data_root",
        help="data folder: datasets found in it are offered (MNIST: DIR/mnist with the four "
        "IDX files), and an mnist data_path must lie in it (env SYNTHGRAD_DATA_DIR; data)",
    )
    serve_cmd.add_argument(
        "--read-only",
        action="store_true",
        default=None,
        help="only the admin token creates runs (env SYNTHGRAD_READ_ONLY)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": train, "sweep": sweep, "presets": presets, "serve": serve}
    return run_command(args, commands)


if __name__ == "__main__":
    sys.exit(main())
