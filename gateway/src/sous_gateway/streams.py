"""Admission of live-event streams: caps per caller, per workspace and in all.

A stream holds an upstream connection for as long as it lives, so one tenant opening hundreds of them
could otherwise take every connection the gateway has. Streams use their own pool (see bootstrap), and
this ledger refuses a stream beyond the caps with 429 and `Retry-After` before any connection is taken.
Counts are per gateway process, like the rate limits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sous_gateway.limits import too_many


@dataclass(frozen=True)
class StreamCaps:
    per_caller: int
    per_workspace: int
    total: int
    retry_after_s: int


class StreamSlot:
    """One admitted stream; release it exactly once when the stream ends."""

    def __init__(self, ledger: StreamLedger, caller: str, workspace: str) -> None:
        self._ledger = ledger
        self.caller = caller
        self.workspace = workspace
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._ledger._release(self)


class StreamLedger:
    def __init__(self, caps: StreamCaps) -> None:
        self.caps = caps
        self._callers: Counter[str] = Counter()
        self._workspaces: Counter[str] = Counter()
        self.open = 0

    def admit(self, caller: str, workspace: str) -> StreamSlot:
        caps = self.caps
        if self._callers[caller] >= caps.per_caller:
            raise too_many(caps.retry_after_s, f"at most {caps.per_caller} open streams per caller", "too_many_streams")
        if self._workspaces[workspace] >= caps.per_workspace:
            raise too_many(
                caps.retry_after_s, f"at most {caps.per_workspace} open streams per workspace", "too_many_streams"
            )
        if self.open >= caps.total:
            raise too_many(caps.retry_after_s, "the gateway has no stream capacity left", "too_many_streams")
        self._callers[caller] += 1
        self._workspaces[workspace] += 1
        self.open += 1
        return StreamSlot(self, caller, workspace)

    def _release(self, slot: StreamSlot) -> None:
        self.open -= 1
        for counter, key in ((self._callers, slot.caller), (self._workspaces, slot.workspace)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def count(self, *, caller: str | None = None, workspace: str | None = None) -> int:
        if caller is not None:
            return self._callers[caller]
        if workspace is not None:
            return self._workspaces[workspace]
        return self.open
