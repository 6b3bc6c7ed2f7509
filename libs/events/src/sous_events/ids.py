"""UUIDv7 identifiers: time-ordered, so event ids sort by creation time."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Random bytes drawn from the OS a few KiB at a time: one system call per ~400 ids instead of one or two each.
_RANDOM_CHUNK = 4096
_random = b""
_random_at = 0


def _random_bytes(n: int) -> bytes:
    """`n` bytes of OS randomness; the caller holds `_lock`."""
    global _random, _random_at
    if _random_at + n > len(_random):
        _random, _random_at = os.urandom(_RANDOM_CHUNK), 0
    chunk = _random[_random_at : _random_at + n]
    _random_at += n
    return chunk


def _uuid7_int() -> int:
    """RFC 9562 UUIDv7 as an integer, with a 12-bit counter in rand_a, monotonic within a process."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _counter = int.from_bytes(_random_bytes(2), "big") & 0x3FF
        counter = _counter
        rand_b = int.from_bytes(_random_bytes(8), "big") & 0x3FFFFFFFFFFFFFFF
    return (ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b


def uuid7() -> uuid.UUID:
    return uuid.UUID(int=_uuid7_int())


def new_id() -> str:
    """A UUIDv7 in its canonical text form (formatted directly: no UUID object per id)."""
    digits = f"{_uuid7_int():032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
