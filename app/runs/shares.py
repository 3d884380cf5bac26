"""Fair shares of the server's global caps: stored runs, unfinished runs, training slots.

No visitor (an owner token, or every owner of one client address together) holds
more than its share of each cap, and visitors together never fill the part of it
kept for the admin: what a visitor cannot have now is a TooManyRuns (429 with
Retry-After) naming the limit and how to free it. Plain Python, no HTTP.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from app.runs.run import Run
from app.runs.status import RunStatus, TooManyRuns
from app.settings import Settings


@dataclass(frozen=True)
class Payer:
    """Who a run is charged to besides its owner token: the creating address, the admin."""

    address: str | None
    admin: bool


#: Seconds a 429 for a full stored-run share suggests waiting (deleting frees room at once).
RETRY_STORED = 60
#: ... for a full unfinished-run share (runs finish, or their owner stops them).
RETRY_UNFINISHED = 30


class Shares:
    """Fair shares of the server's global caps: stored runs, unfinished runs, training slots.

    A visitor is an owner token, and also every owner of one client address together
    (a client that drops its cookie gets a new token each time, not a new address).
    Visitors together fill at most the caps less `admin_reserve` of them; one owner at
    most `owner_share` of that room, one address `address_share`; of the training slots,
    one owner or address at most its share (at least one), and the admin's runs have
    `admin_slots` more. Who created a run (its address, admin or not) is kept in memory:
    after a restart, stored runs count against their owners and the global caps only.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.payers: dict[str, Payer] = {}
        self._lock = threading.Lock()

    def charge(self, runs: list[Run], client: str | None, admin: bool) -> None:
        """Record who created `runs` (after they are admitted)."""
        with self._lock:
            for run in runs:
                self.payers[run.id] = Payer(None if admin else client, admin)

    def forget(self, existing: Collection[str]) -> None:
        with self._lock:
            for run_id in [r for r in self.payers if r not in existing]:
                del self.payers[run_id]

    def is_admin(self, run_id: str) -> bool:
        payer = self.payers.get(run_id)
        return payer is not None and payer.admin

    def address(self, run_id: str) -> str | None:
        payer = self.payers.get(run_id)
        return None if payer is None else payer.address

    def room(self, cap: int) -> int:
        """What visitors together may fill of a cap: all but the admin's reserve."""
        return cap - math.ceil(cap * self.settings.admin_reserve)

    def limits(self, cap: int) -> tuple[int, int, int]:
        """Visitors' room, one owner's share and one address's share of a run cap."""
        room = self.room(cap)
        s = self.settings
        return room, max(1, int(room * s.owner_share)), max(1, int(room * s.address_share))

    def slot_limits(self, slots: int) -> tuple[int, int]:
        """Training slots one owner, one address may hold at once (each at least one)."""
        s = self.settings
        return max(1, int(slots * s.owner_share)), max(1, int(slots * s.address_share))

    def check(
        self,
        runs: Mapping[str, Run],
        adding: int,
        *,
        owner_hash: str,
        client: str | None,
        admin: bool,
    ) -> None:
        """Raise TooManyRuns when `adding` more runs of this visitor pass a cap or a share."""
        self.forget(runs.keys())
        s = self.settings
        everyone = list(runs.values())
        unfinished = [r for r in everyone if not r.status.terminal]
        for kind, cap, counted in (
            ("stored", s.max_stored_runs, everyone),
            ("unfinished", s.max_unfinished_runs, unfinished),
        ):
            if admin:
                if len(counted) + adding > cap:
                    raise TooManyRuns(self._full(kind, cap, len(counted), admin=True))
                continue
            self._check_visitor(kind, cap, counted, adding, owner_hash, client)

    def _check_visitor(
        self,
        kind: str,
        cap: int,
        counted: list[Run],
        adding: int,
        owner_hash: str,
        client: str | None,
    ) -> None:
        room, per_owner, per_address = self.limits(cap)
        retry = RETRY_STORED if kind == "stored" else RETRY_UNFINISHED
        visitors = [r for r in counted if not self.is_admin(r.id)]
        if len(visitors) + adding > room:
            raise TooManyRuns(self._full(kind, cap, len(counted), admin=False), retry)
        mine = sum(1 for r in visitors if r.owner_hash == owner_hash)
        if mine + adding > per_owner:
            raise TooManyRuns(self._share(kind, "you have", mine, adding, per_owner, cap), retry)
        if client is None:
            return
        ours = sum(1 for r in visitors if self.address(r.id) == client)
        if ours + adding > per_address:
            who = "your address (every owner token from it together) has"
            raise TooManyRuns(self._share(kind, who, ours, adding, per_address, cap), retry)

    def _full(self, kind: str, cap: int, now: int, admin: bool) -> str:
        what = "runs" if kind == "stored" else "unfinished (queued, running or paused) runs"
        text = f"the server keeps at most {cap} {what} and has {now}"
        if not admin:
            text += f"; the last {cap - self.room(cap)} are kept for its admin"
        return f"{text}: {_free(kind)}"

    @staticmethod
    def _share(kind: str, who: str, have: int, adding: int, share: int, cap: int) -> str:
        what = "runs" if kind == "stored" else "unfinished (queued, running or paused) runs"
        setting = f"SYNTHGRAD_MAX_{kind.upper()}_RUNS"
        text = (
            f"{who} {have} {what}; one visitor may have at most {share} of the server's "
            f"{cap} ({setting})"
        )
        if adding > share:
            return f"{text}, and this request creates {adding}: ask for fewer"
        return f"{text}, and this request creates {adding}: {_free(kind)}"

    def may_start(
        self, run_id: str, runs: Mapping[str, Run], active: Collection[str], slots: int
    ) -> bool:
        """Whether the queued run `run_id` may take a training slot now (each active id
        holds one slot, a batch of seeds included)."""
        if self.is_admin(run_id):
            return len(active) < slots + self.settings.admin_slots
        holders = [runs[a] for a in active if a in runs and not self.is_admin(a)]
        run = runs.get(run_id)
        if len(holders) >= slots or run is None:
            return len(holders) < slots  # a run gone from `runs`: the caller skips it
        # A paused run keeps its slot but not its visitor's share: a fork of it may start.
        training = [r for r in holders if r.status is not RunStatus.PAUSED]
        return not self._holds_share(run, training, slots)

    def _holds_share(self, run: Run, holders: list[Run], slots: int) -> bool:
        """Whether `run`'s owner or address already holds its share of the slots."""
        per_owner, per_address = self.slot_limits(slots)
        if sum(1 for r in holders if r.owner_hash == run.owner_hash) >= per_owner:
            return True
        address = self.address(run.id)
        ours = sum(1 for r in holders if address is not None and self.address(r.id) == address)
        return ours >= per_address


def _free(kind: str) -> str:
    if kind == "stored":
        return "delete finished runs (or sweeps) to make room"
    return "wait for some to finish, or stop some"
