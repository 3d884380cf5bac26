"""Settings: every knob of the server in one object, from the environment and the command line."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.execution import EXECUTORS
from app.execution.session import RAY_MISSING, ray_available

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
#: How an environment variable's text becomes each kind of setting.
_PARSERS: dict[Any, Any] = {
    bool: lambda raw: raw.strip().lower() in ("1", "true", "yes", "on"),
    int: int,
    float: float,
}

#: Short names the spec and the docs use for some variables.
ENV_ALIASES = {"max_concurrent_runs": "SYNTHGRAD_MAX_RUNS", "data_root": "SYNTHGRAD_DATA_DIR"}


@dataclass(frozen=True)
class Settings:
    """Server settings; each field reads the env variable SYNTHGRAD_<FIELD> (upper case).

    >>> Settings.from_env({"SYNTHGRAD_PORT": "9000"}).port
    9000
    """

    host: str = "127.0.0.1"
    port: int = 8000
    #: SQLite file of runs and metrics; its folder is created if missing.
    db: str = str(Path("data") / "synthgrad.sqlite3")
    #: runs that train at once; later ones wait as `queued`. 0 means the number of cores.
    max_concurrent_runs: int = 0
    #: runs kept in the store; creating one more answers 429.
    max_stored_runs: int = 500
    #: cap on epochs * steps per epoch of one run.
    max_total_steps: int = 2_000_000
    #: token that may control every run and create runs on a read-only server.
    admin_token: str | None = None
    #: only the admin token may create runs.
    read_only: bool = False
    #: seconds between store flushes (and so live batches); at most 1 s by design.
    flush_interval: float = 0.1
    #: most records of one run streamed live per second; the rest are stored only.
    #: 50 gives each chart ~5 new points per redraw at ~10 redraws a second, at ~90 KB/s
    #: per viewer (docs/benchmarks.md, "Stream").
    stream_rate: int = 50
    #: permessage-deflate on websockets: ~4x less traffic per viewer for CPU per viewer
    #: on the server (measured: 28% of a core for 20 viewers); off by default.
    ws_compression: bool = False
    #: uvicorn's graceful-shutdown timeout, so an idle websocket cannot hold the process.
    shutdown_timeout: float = 3.0
    #: where runs train: "process" (one process per run, every core), "thread", or "ray"
    #: (Ray actors on a local Ray instance or the cluster at `ray_address`).
    executor: str = "process"
    #: seconds of training a process-executor run sends per pipe message.
    pipe_slice: float = 0.01
    #: Ray cluster to join ("ray://head:10001" or "auto"); none starts a local Ray instance.
    ray_address: str | None = None
    #: seconds of training a Ray run sends per message (a round trip costs ~2 ms).
    ray_slice: float = 0.05
    #: seconds of training between a run's checkpoints (its exact state, stored): a fork
    #: at any step replays at most about this much training from the nearest one.
    checkpoint_seconds: float = 2.0
    #: most live records a websocket client may have pending; past it the backlog is thinned.
    stream_backlog: int = 4000
    #: level of the server's log (debug, info, warning, error).
    log_level: str = "info"
    #: file whose first line is the admin token (keeps it out of `ps` and shell history).
    admin_token_file: str | None = None
    # -- limits per run and per visitor (docs/reliability.md) --
    #: most memory a run's training process may need, by the estimate (bytes; 1 GiB lets
    #: two runs train on a small box with room for the server).
    max_run_memory: int = 2**30
    #: most training time a run may need, estimated from its floating-point work.
    max_run_seconds: float = 6 * 3600.0
    #: sustained floating-point rate one run gets, for that estimate (one core, measured
    #: 2-5e10 on wide nets; lower is more cautious).
    flops_per_second: float = 1e10
    #: unfinished (queued, running, paused) runs or sweeps one owner may have; 0 = no limit.
    max_active_per_owner: int = 4
    #: unfinished (queued, running, paused) runs on the server, everyone's together.
    max_unfinished_runs: int = 400
    #: most of each cap (stored runs, unfinished runs, training slots) one owner token may
    #: hold, as a share of what visitors may fill (the caps less the admin's reserve).
    owner_share: float = 0.3
    #: most of each cap every owner of one client address together may hold.
    address_share: float = 0.5
    #: part of the stored- and unfinished-run caps that only the admin may fill.
    admin_reserve: float = 0.1
    #: training slots beyond max_concurrent_runs that only the admin's runs may use.
    admin_slots: int = 1
    #: runs one client address may create per minute (bursts up to the same); 0 = no limit.
    create_rate: int = 30
    #: free bytes the store's disk must keep; below it new runs are refused.
    min_free_disk: int = 256 * 2**20
    #: the data folder (`--data-dir`, SYNTHGRAD_DATA_DIR or SYNTHGRAD_DATA_ROOT): every dataset
    #: found in it is offered (MNIST: its `mnist` folder holding the four IDX files), and an
    #: mnist `data_path` must lie in it (relative paths are taken inside it).
    data_root: str = "data"
    #: seconds a run told to stop or be deleted gets before its training process is killed.
    kill_grace: float = 2.0
    #: seconds a training process gets to answer a capture (a fork) or a knob change; a
    #: process that does not is killed and its run fails, saying so.
    answer_timeout: float = 5.0
    #: seconds a run may stay paused before it is parked: its exact state is kept, its
    #: training process ends and its slot goes to the next queued run; resume queues it.
    park_after: float = 60.0
    # -- connections --
    #: largest request body (bytes); larger ones get 413 unread.
    max_body_bytes: int = 64 * 1024
    #: seconds a connection may take to send a request's headers.
    header_timeout: float = 10.0
    #: open HTTP connections one client address may hold.
    max_connections_per_address: int = 256
    #: seconds a websocket send may wait on a client that does not read; then it is closed.
    ws_send_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name in ("flush_interval", "pipe_slice", "ray_slice"):
            if not 0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: must be > 0 and <= 1 second")
        if self.max_concurrent_runs < 0:
            raise ValueError("max_concurrent_runs: must be >= 0")
        if not 0 < self.port < 65536:
            raise ValueError("port: must be between 1 and 65535")
        self._check_executor()
        if self.stream_backlog < 10:
            raise ValueError("stream_backlog: must be >= 10 records")
        for name in ("max_run_memory", "max_run_seconds", "flops_per_second", "max_body_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0")
        self._check_shares()
        timeouts = ("header_timeout", "ws_send_timeout", "kill_grace", "answer_timeout")
        for name in (*timeouts, "checkpoint_seconds", "park_after"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be > 0 seconds")
        if self.admin_token_file:
            _ = self.admin  # a missing or empty file stops the server at once, saying so
        if self.log_level.lower() not in LOG_LEVELS:
            raise ValueError(f"log_level: must be one of {', '.join(LOG_LEVELS)}")

    def _check_shares(self) -> None:
        for name in ("owner_share", "address_share"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be > 0 and <= 1")
        if not 0 <= self.admin_reserve < 1:
            raise ValueError("admin_reserve: must be >= 0 and < 1")
        for name in ("max_stored_runs", "max_unfinished_runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1")
        if self.admin_slots < 0:
            raise ValueError("admin_slots: must be >= 0")

    def _check_executor(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor: must be one of {', '.join(EXECUTORS)}")
        if self.executor == "ray" and not ray_available():
            raise ValueError(f"executor: {RAY_MISSING}")

    @property
    def admin(self) -> str | None:
        """The admin token: given directly, or the first line of `admin_token_file`."""
        if self.admin_token or not self.admin_token_file:
            return self.admin_token
        try:
            text = Path(self.admin_token_file).expanduser().read_text().strip()
        except OSError as exc:
            raise ValueError(f"admin_token_file: cannot read it ({exc.strerror})") from None
        token = text.splitlines()[0].strip() if text else ""
        if not token:
            raise ValueError("admin_token_file: the file is empty")
        return token

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Defaults, then SYNTHGRAD_* variables, then explicit overrides (the CLI's flags)."""
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            raw = env.get(f"SYNTHGRAD_{f.name.upper()}", env.get(ENV_ALIASES.get(f.name, "")))
            if raw is None:
                continue
            try:
                values[f.name] = _PARSERS.get(hints[f.name], str)(raw)
            except ValueError:
                raise ValueError(f"{f.name}: cannot read {raw!r} from the environment") from None
        values.update(overrides)
        return cls(**values)
