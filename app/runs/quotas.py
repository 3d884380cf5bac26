"""Limits on what one visitor may ask of the server: cost per run, shares of the caps, pace.

- `check_budget`: a run's (or a batch of seeds') estimated memory and training time
  against the per-run limits; `seeds_per_batch`: how many seeds of a config one
  batch may train within them.
- `Admission`: whether a creation may go ahead (store, cost, the shares of
  app.runs.shares, the owner's items, the pace).
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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from app.runs.run import Run
from app.runs.shares import Shares
from app.runs.status import TooManyRuns, Unavailable
from app.settings import Settings
from app.storage.errors import PROBE_BYTES
from app.storage.store import Store
from synthgrad_core import ConfigError
from synthgrad_core.config import ResolvedConfig, planned_steps
from synthgrad_core.cost import Cost, describe_bytes, estimate, estimate_batch
from synthgrad_core.data import MNIST_FOLDER, datasets_in, mnist_missing
from synthgrad_core.seeds import MAX_SEEDS


def check_budget(
    cfg: ResolvedConfig, max_memory: int, max_seconds: float, flops_per_second: float
) -> None:
    """Raise ConfigError naming the estimate and the limit when `cfg` costs too much."""
    if problem := over_budget(estimate(cfg), max_memory, max_seconds, flops_per_second):
        field, message = problem
        raise ConfigError(field, message)


def over_budget(
    cost: Cost, max_memory: int, max_seconds: float, flops_per_second: float
) -> tuple[str, str] | None:
    """The field to blame and a message when `cost` passes a per-run limit, else None."""
    if cost.memory_bytes > max_memory:
        return "hidden", (
            f"this config needs about {describe_bytes(cost.memory_bytes)} of memory to train; "
            f"the server allows {describe_bytes(max_memory)} per run (narrower or fewer "
            "layers, a smaller batch_size or sg_hidden)"
        )
    seconds = cost.seconds(flops_per_second)
    if seconds > max_seconds:
        return "epochs", (
            f"this config would train for about {_hours(seconds)}; the server allows "
            f"{_hours(max_seconds)} per run (fewer epochs, a narrower net)"
        )
    return None


def seeds_per_batch(cfg: ResolvedConfig, settings: Settings) -> int:
    """Most seeds of `cfg` one batch may train: a batch is one job, held to one run's memory
    and time budget (its estimate is its seeds', `estimate_batch`), and to MAX_SEEDS."""
    limits = (settings.max_run_memory, settings.max_run_seconds, settings.flops_per_second)
    low, high = 1, MAX_SEEDS  # a seed alone fits: admission checked each run's cost
    while low < high:
        middle = (low + high + 1) // 2
        if over_budget(estimate_batch(cfg, middle), *limits):
            high = middle - 1
        else:
            low = middle
    return low


def split_evenly(items: list[Any], most: int) -> list[list[Any]]:
    """`items` in as few consecutive chunks of at most `most` as can be, sizes within one.

    >>> [len(c) for c in split_evenly(list(range(10)), 4)]
    [4, 3, 3]
    """
    chunks = -(-len(items) // most)
    size, extra = divmod(len(items), chunks)
    out, start = [], 0
    for i in range(chunks):
        end = start + size + (i < extra)
        out.append(items[start:end])
        start = end
    return out


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

    def pop(self, may_start: Callable[[str], bool] | None = None) -> str | None:
        """The next owner's oldest run that `may_start` (by default: any); that owner then
        goes to the back of the line. None when no owner's oldest run may start."""
        for owner, runs in list(self._owners.items()):
            if not runs or may_start is None or may_start(runs[0]):
                del self._owners[owner]
                run_id = runs.popleft() if runs else None
                if runs:
                    self._owners[owner] = runs
                if run_id is not None:
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
        self.shares = Shares(settings)
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
        runs: Mapping[str, Run],
        owner_hash: str,
    ) -> None:
        """The checks of one creation of runs (a sweep is one): size, the shares, then `admit`.

        Every run counts against the stored and unfinished caps and their shares; the
        owner's item quota and the pace apply once; each run's cost on its own.
        """
        s = self.settings
        for cfg in cfgs:
            if (steps := planned_steps(cfg)) > s.max_total_steps:
                raise ConfigError(
                    "epochs",
                    f"this config trains {steps} steps; the server allows at most "
                    f"{s.max_total_steps} (fewer epochs or examples, or a larger batch_size)",
                )
        self.shares.check(runs, len(cfgs), owner_hash=owner_hash, client=client, admin=admin)
        # The owner's queued, running or paused items: a sweep's runs count as one.
        mine = (r for r in runs.values() if r.owner_hash == owner_hash)
        unfinished = len({r.sweep_id or r.id for r in mine if not r.status.terminal})
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
                f"you have {unfinished} unfinished runs or sweeps; at most "
                f"{s.max_active_per_owner} may be queued, running or paused at once: stop "
                "or wait for one",
                retry_after=30,
            )
        if client:
            self.limiter.take(client)
