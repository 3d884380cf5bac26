"""Reclaiming deleted runs' space: records deleted in chunks, pages given back."""

from __future__ import annotations

import logging
import threading
import time

from app.storage.errors import StoreError
from app.storage.store import Store

log = logging.getLogger("synthgrad.store")


class Purger(threading.Thread):
    """Deletes records of deleted runs a chunk at a time, then gives the pages back.

    Woken after each delete and every PURGE_INTERVAL seconds (records a crash or a
    late flush left behind are swept too).
    """

    PURGE_INTERVAL = 60.0

    def __init__(self, store: Store) -> None:
        super().__init__(name="synthgrad-purger", daemon=True)
        self.store = store
        self._wanted = threading.Event()
        self._stopping = threading.Event()

    def wake(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        self.join(timeout=5)

    def run(self) -> None:
        while not self._stopping.is_set():
            self._wanted.wait(self.PURGE_INTERVAL)
            self._wanted.clear()
            try:
                while not self._stopping.is_set() and self.store.purge():
                    time.sleep(0.01)  # let the writer in between chunks
            except StoreError as exc:
                log.warning("reclaiming deleted runs' space failed (%s); will retry", exc)
