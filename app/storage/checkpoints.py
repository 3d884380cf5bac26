"""Checkpoints in the store: a run's exact trainer state at some of its steps, compactly.

A checkpoint is one `synthgrad_core.state.TrainerState` (the layout every trainer
captures) packed into one blob: a JSON header (the state's metadata and each
array's name, dtype and shape) and the arrays' bytes, byte-shuffled (the bytes of
each float grouped by significance, so the sign and exponent bytes compress) and
zlib-compressed. The table (`migrations.add_checkpoints`) keeps a few per run:
`kept` thins older ones as a run ages (all of the newest, then ever wider spaced),
and the purger deletes a deleted run's checkpoints with its records.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import zlib
from typing import Any

import numpy as np

from app.storage.store import Store
from synthgrad_core.state import TrainerState

#: The first byte of a packed checkpoint: its encoding.
FORMAT = b"\x01"
#: Checkpoints a run keeps: its newest RECENT, and of older ones ever fewer. The i-th
#: checkpoint of a run (its `seq`), n checkpoints later, stays while i is a multiple of
#: 2^k, k = floor(log2(n / RECENT)) + 1: RECENT / 2 per doubling of age, so a run with N
#: checkpoints keeps about RECENT + RECENT / 2 * log2(N / RECENT). Multiples of a higher
#: power of two are among those of a lower one, so thinning never needs what it dropped.
RECENT = 4
#: zlib's level: 1 packs a state in about half the time of 6, within 2% of its size.
LEVEL = 1


def pack(state: TrainerState) -> bytes:
    """A state as one compact blob (see the module's docstring)."""
    names = sorted(state.arrays)
    arrays = [np.ascontiguousarray(state.arrays[name]) for name in names]
    header = json.dumps(
        {
            "meta": state.meta,
            "arrays": [[n, a.dtype.str, list(a.shape)] for n, a in zip(names, arrays, strict=True)],
        }
    ).encode()
    body = b"".join(_shuffle(a) for a in arrays)
    return FORMAT + struct.pack("<I", len(header)) + header + zlib.compress(body, LEVEL)


def unpack(data: bytes) -> TrainerState:
    if data[:1] != FORMAT:
        raise ValueError(f"unknown checkpoint format {data[:1]!r}")
    (size,) = struct.unpack("<I", data[1:5])
    header = json.loads(data[5 : 5 + size])
    body = zlib.decompress(data[5 + size :])
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for name, dtype_text, shape in header["arrays"]:
        dtype = np.dtype(dtype_text)
        count = int(np.prod(shape)) if shape else 1
        n_bytes = count * dtype.itemsize
        arrays[name] = _unshuffle(body[offset : offset + n_bytes], dtype, shape)
        offset += n_bytes
    return TrainerState(header["meta"], arrays)


def _shuffle(array: np.ndarray) -> bytes:
    size = array.dtype.itemsize
    if size == 1 or array.size == 0:
        return array.tobytes()
    return array.reshape(-1).view(np.uint8).reshape(-1, size).T.tobytes()


def _unshuffle(raw: bytes, dtype: np.dtype[Any], shape: list[int]) -> np.ndarray:
    size = dtype.itemsize
    flat = np.frombuffer(raw, np.uint8)
    if size > 1 and flat.size:
        flat = flat.reshape(size, -1).T
    return np.ascontiguousarray(flat).view(dtype).reshape(shape).copy()


def kept(seqs: list[int]) -> list[int]:
    """Which of a run's checkpoints (by `seq`) thinning keeps (see RECENT)."""
    if not seqs:
        return []
    newest = max(seqs)
    out = []
    for seq in sorted(seqs, reverse=True):
        age = newest - seq
        if age < RECENT or seq % (2 ** ((age // RECENT).bit_length())) == 0:
            out.append(seq)
    return out


class Checkpoints:
    """A run's checkpoints in the store's `checkpoints` table."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, run_id: str, state: TrainerState) -> int:
        """Store `state` at its step (replacing one stored there), then thin the run's
        checkpoints; returns the blob's size in bytes."""
        blob = pack(state)

        def work(conn: sqlite3.Connection) -> None:
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM checkpoints WHERE run_id = ?", (run_id,)
            ).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, step, seq, data) VALUES (?, ?, ?, ?)",
                (run_id, state.step, seq, blob),
            )
            rows = conn.execute("SELECT seq FROM checkpoints WHERE run_id = ?", (run_id,))
            seqs = [row[0] for row in rows]
            dropped = set(seqs) - set(kept(seqs))
            conn.executemany(
                "DELETE FROM checkpoints WHERE run_id = ? AND seq = ?",
                [(run_id, old) for old in dropped],
            )

        self.store._write(work)
        return len(blob)

    def steps(self, run_id: str) -> list[int]:
        rows = self.store._read(
            "SELECT step FROM checkpoints WHERE run_id = ? ORDER BY step", (run_id,)
        )
        return [row[0] for row in rows]

    def at_or_before(self, run_id: str, step: int) -> TrainerState | None:
        """The run's newest checkpoint at or before `step`, or None."""
        rows = self.store._read(
            "SELECT data FROM checkpoints WHERE run_id = ? AND step <= ? "
            "ORDER BY step DESC LIMIT 1",
            (run_id, step),
        )
        return unpack(rows[0][0]) if rows else None

    def bytes_of(self, run_id: str) -> int:
        rows = self.store._read(
            "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM checkpoints WHERE run_id = ?", (run_id,)
        )
        return int(rows[0][0])

    def bytes_of_owner(self, owner_hash: str) -> int:
        """Bytes of checkpoints of every stored run of one owner (their storage)."""
        rows = self.store._read(
            "SELECT COALESCE(SUM(LENGTH(c.data)), 0) FROM checkpoints c "
            "JOIN runs r ON r.id = c.run_id WHERE r.owner_hash = ?",
            (owner_hash,),
        )
        return int(rows[0][0])
