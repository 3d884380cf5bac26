"""How a record is stored: its JSON, zlib-compressed with a preset dictionary of record keys.

A record of the article's net (~1.2 KB of JSON) takes ~0.5 KB.
"""

from __future__ import annotations

import zlib

_STEMS = [
    "cos_h",
    "rel_err_h",
    "norm_ratio_h",
    "saturated_h",
    "module_loss_h",
    "w_mean_l",
    "w_std_l",
    "w_norm_l",
    "w_max_l",
    "update_ratio_l",
    "t_forward_l",
    "t_update_l",
    "hist_l",
]
#: The record keys, most frequent last (zlib finds near matches cheaper). Never change
#: it: stored records name their encoding by FORMAT, and FORMAT 1 means this dictionary.
ZDICT = (
    "".join(f'"{stem}{i}":' for i in range(8, 0, -1) for stem in _STEMS)
    + '"test_loss":"test_accuracy":"test_exact_accuracy":"unix_time":null,'
    + '{"step":,"epoch":,"wall_time":0.0,"loss":,"accuracy":,"exact_accuracy":0.'
).encode()
FORMAT = b"\x01"


class UnknownFormat(ValueError):
    """A stored record names an encoding this version does not know."""


def encode_record(text: str) -> bytes:
    """A record's JSON as stored: a format byte, then zlib with the key dictionary."""
    packer = zlib.compressobj(6, zdict=ZDICT)
    return FORMAT + packer.compress(text.encode()) + packer.flush()


def decode_record(data: bytes) -> str:
    if data[:1] != FORMAT:
        raise UnknownFormat(f"unknown record format {data[:1]!r}")
    unpacker = zlib.decompressobj(zdict=ZDICT)
    return (unpacker.decompress(data[1:]) + unpacker.flush()).decode()
