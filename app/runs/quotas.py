"""Limits on what one visitor may ask of the server: cost per run, runs per owner, pace.

- `check_budget`: a run's estimated memory and training time against the limits.
- `RateLimiter`: a token bucket per client address for run creation.
- `FairQueue`: waiting runs, served round-robin across owners, so one owner's
  backlog never starves another's run.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.runs.status import TooManyRuns, Unavailable
from app.settings import Settings
from app.storage.errors import PROBE_BYTES
from app.storage.store import Store
from synthgrad_core import ConfigError
from synthgrad_core.config import ResolvedConfig, planned_steps
from synthgrad_core.cost import describe_bytes, estimate
from synthgrad_core.data import MNIST_FOLDER, datasets_in, mnist_missing


def check_budget(
    cfg: ResolvedConfig, max_memory: int, max_seconds: float, flops_per_second: float
) -> None:
    """Raise ConfigError naming the estimate and the limit when `cfg` costs too much."""
    cost = estimate(cfg)
    if cost.memory_bytes > max_memory:
        raise ConfigError(
            "hidden",
            f"this config needs about {describe_bytes(cost.memory_bytes)} of memory to train; "
            f"the server allows {describe_bytes(max_memory)} per run (narrower or fewer "
            "layers, a smaller batch_size or sg_hidden)",
        )
    seconds = cost.seconds(flops_per_second)
    if seconds > max_seconds:
        raise ConfigError(
            "epochs",
            f"this config would train for about {_hours(seconds)}; the server allows "
            f"{_hours(max_seconds)} per run (fewer epochs, a narrower net)",
        )


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


class RateLimiter:
    """At most `per_minute` events per key per minute, with bursts up to `per_minute`.

    A token bucket: each key holds up to `per_minute` tokens and regains one every
    60/`per_minute` seconds. Keys idle long enough to be full again are forgotten.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.refill = per_minute / 60.0
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token of `key`; raise TooManyRuns with a retry delay when none is left."""
        if self.capacity <= 0:
            return
        now = self.clock()
        with self._lock:
            tokens, since = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - since) * self.refill)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = math.ceil((1 - tokens) / self.refill)
                raise TooManyRuns(
                    f"at most {self.capacity:.0f} runs a minute from one address; "
                    f"try again in {wait} s",
                    retry_after=wait,
                )
            self._buckets[key] = (tokens - 1, now)
            self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        full_after = self.capacity / self.refill
        while self._buckets:
            key, (_, since) = next(iter(self._buckets.items()))
            if now - since < full_after:
                break
            del self._buckets[key]


class FairQueue:
    """Run ids waiting to train, one queue per owner, served round-robin across owners."""

    def __init__(self) -> None:
        self._owners: OrderedDict[str, deque[str]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(q) for q in self._owners.values())

    def __contains__(self, run_id: object) -> bool:
        return any(run_id in q for q in self._owners.values())

    def push(self, owner: str, run_id: str) -> None:
        self._owners.setdefault(owner, deque()).append(run_id)

    def pop(self) -> str | None:
        """The next owner's oldest run; that owner then goes to the back of the line."""
        while self._owners:
            owner, runs = self._owners.popitem(last=False)
            if runs:
                run_id = runs.popleft()
                if runs:
                    self._owners[owner] = runs
                return run_id
        return None

    def remove(self, run_id: str) -> bool:
        for owner, runs in self._owners.items():
            if run_id in runs:
                runs.remove(run_id)
                if not runs:
                    del self._owners[owner]
                return True
        return False


#: Seconds between write probes of a failed store (each writes PROBE_BYTES).
PROBE_INTERVAL = 5.0


class Admission:
    """Whether a new run may be created: store health, disk, cost, the owner's runs, the pace.

    The admin token passes the per-owner and per-address limits (an operator
    scripting a sweep); the cost budget and the disk apply to everyone, and the
    operator raises them in the settings.
    """

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.limiter = RateLimiter(settings.create_rate)
        self._probed = 0.0

    def check_store(self) -> None:
        """Raise Unavailable while the store cannot write or its disk is nearly full."""
        if self.store.failure:
            now = time.monotonic()
            if now - self._probed < PROBE_INTERVAL or not self.store.probe():
                self._probed = now
                raise Unavailable(f"the server cannot store runs now ({self.store.failure})")
        free = self.store.free_bytes()
        # Below a probe's worth the disk is full, whatever the operator's guard says.
        floor = max(self.settings.min_free_disk, PROBE_BYTES)
        if free < floor:
            raise Unavailable(
                f"the disk holding the store has {describe_bytes(free)} free; new runs need "
                f"at least {describe_bytes(floor)}"
            )

    # -- data files -----------------------------------------------------------
    def data_root(self) -> Path:
        return Path(self.settings.data_root).expanduser().resolve()

    def confine(self, data_path: str) -> Path:
        """The folder `data_path` names inside the data root; ConfigError if it is not one.

        A path outside the root gets one answer whether or not it exists, so the
        form cannot probe the server's file system.
        """
        root = self.data_root()
        target = (root / data_path).resolve()
        if target != root and root not in target.parents:
            raise ConfigError(
                "data_path",
                "must name a folder inside the server's data folder (SYNTHGRAD_DATA_ROOT), "
                "relative to it, e.g. 'mnist'",
            )
        if not target.is_dir():
            raise ConfigError("data_path", f"the server's data folder has no folder {data_path!r}")
        return target

    def datasets(self) -> list[str]:
        """The datasets this server offers: the built-in ones, and those its data folder holds."""
        return datasets_in(self.data_root())

    def with_data(self, config: dict[str, Any]) -> dict[str, Any]:
        """An MNIST config without a data_path gets the data folder's MNIST; ConfigError
        naming the missing file when the server has none."""
        if config.get("dataset") != "mnist" or config.get("data_path") is not None:
            return config
        missing = mnist_missing(self.data_root() / MNIST_FOLDER)
        if missing is not None:
            raise ConfigError(
                "dataset",
                f"this server has no MNIST: its data folder has no {MNIST_FOLDER}/{missing} "
                f"(or .gz); put MNIST's four IDX files in {MNIST_FOLDER}/ of the folder given "
                "to `synthgrad serve --data-dir` (SYNTHGRAD_DATA_DIR)",
            )
        return {**config, "data_path": MNIST_FOLDER}

    def runnable(self, config: ResolvedConfig) -> ResolvedConfig:
        """The config a trainer gets: an mnist data_path made absolute inside the data root."""
        if config.data_path is None:
            return config
        return dataclasses.replace(config, data_path=str(self.confine(config.data_path)))

    def scrub(self, message: str) -> str:
        """An error message without the data root's absolute path."""
        return message.replace(str(self.data_root()) + "/", "").replace(str(self.data_root()), ".")

    def store_health(self) -> dict[str, Any]:
        """The store's state: writable or why not, free disk, file size."""
        try:
            self.check_store()
            error = None
        except Unavailable as exc:
            error = str(exc)
        return {
            "ok": error is None,
            "error": error,
            "free_bytes": self.store.free_bytes(),
            "file_bytes": self.store.file_bytes(),
        }

    def admit_all(
        self,
        cfgs: list[ResolvedConfig],
        *,
        admin: bool,
        client: str | None,
        stored: int,
        unfinished: int,
    ) -> None:
        """The checks of one creation of runs (a sweep is one): size, room, then `admit`.

        The owner's limits and the pace apply once; each run's cost on its own.
        """
        s = self.settings
        for cfg in cfgs:
            if (steps := planned_steps(cfg)) > s.max_total_steps:
                raise ConfigError(
                    "epochs",
                    f"this config trains {steps} steps; the server allows at most "
                    f"{s.max_total_steps} (fewer epochs or examples, or a larger batch_size)",
                )
        if stored + len(cfgs) > s.max_stored_runs:
            raise TooManyRuns(
                f"the server keeps at most {s.max_stored_runs} runs and has {stored}; "
                "delete some first"
            )
        for i, cfg in enumerate(cfgs):
            self.admit(cfg, admin=admin or i > 0, client=client, unfinished=unfinished)

    def admit(
        self, cfg: ResolvedConfig, *, admin: bool, client: str | None, unfinished: int
    ) -> None:
        """Raise ConfigError (cost), Unavailable (store) or TooManyRuns (quota, pace)."""
        s = self.settings
        if cfg.data_path is not None:
            folder = self.confine(cfg.data_path)
            if cfg.dataset == "mnist" and (missing := mnist_missing(folder)) is not None:
                raise ConfigError(
                    "data_path", f"the folder {cfg.data_path!r} has no {missing} (or .gz)"
                )
        check_budget(cfg, s.max_run_memory, s.max_run_seconds, s.flops_per_second)
        self.check_store()
        if admin:
            return
        if s.max_active_per_owner and unfinished >= s.max_active_per_owner:
            raise TooManyRuns(
                f"you have {unfinished} unfinished runs; at most {s.max_active_per_owner} may "
                "be queued, running or paused at once: stop or wait for one",
                retry_after=30,
            )
        if client:
            self.limiter.take(client)
