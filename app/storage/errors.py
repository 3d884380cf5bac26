"""Store errors in plain words, and how to recover from a damaged database file."""

from __future__ import annotations

import sqlite3

#: Bytes a probe write needs before a failed store counts as writable again; a disk with
#: less free is full.
PROBE_BYTES = 2**20


class StoreError(RuntimeError):
    """The store could not read or write; the message names the cause in plain words."""


class StoreCorrupt(StoreError):
    """The database file fails SQLite's check; the message says how to recover."""


def describe(exc: sqlite3.Error) -> str:
    """A short cause for an SQLite error: "disk full", "database corrupt", ..."""
    text = str(exc).lower()
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL or "disk is full" in text or "no space" in text:
        return "disk full"
    if code == sqlite3.SQLITE_CORRUPT or "malformed" in text or "not a database" in text:
        return "database corrupt"
    if code == sqlite3.SQLITE_IOERR or "disk i/o" in text:
        return "disk I/O error"
    if code == sqlite3.SQLITE_READONLY or "readonly" in text:
        return "database is read-only"
    return f"database error: {exc}"


def recovery_hint(path: str) -> str:
    return (
        f"the database {path} is damaged. Stop the server, keep a copy of the file, then "
        f"restore your backup or salvage what is readable with "
        f"`sqlite3 {path} .recover | sqlite3 recovered.sqlite3` and point SYNTHGRAD_DB "
        "at the new file"
    )
