"""Rebuild synthgrad_core/data/digits.npz from a scikit-learn wheel's digits.csv.gz.

Usage: pip download --no-deps -d /tmp/skl scikit-learn
       python scripts/make_digits.py /tmp/skl/scikit_learn-*.whl
"""

from __future__ import annotations

import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        raw = gzip.decompress(archive.read("sklearn/datasets/data/digits.csv.gz"))
    table = np.loadtxt(io.BytesIO(raw), delimiter=",")
    out = Path(__file__).resolve().parent.parent / "synthgrad_core" / "data" / "digits.npz"
    np.savez_compressed(
        out, images=table[:, :-1].astype(np.uint8), labels=table[:, -1].astype(np.uint8)
    )
    print(f"wrote {out} ({len(table)} images)")


if __name__ == "__main__":
    main(sys.argv[1])
