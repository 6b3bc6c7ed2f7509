"""The recipes' learning_data as this process last read or committed it, by stream version.

A recipe's learning_data (its last 50 analyses) is the largest document the service reads: reading it from
its row and validating it was most of what learning from a run cost, and the row holds what this process
wrote at the previous run. A version of a stream is written once (the event store refuses a second), so the
document at a version never changes: an entry is only ever put from a committed row or after its
transaction committed, and a lookup at another version misses.
"""

from __future__ import annotations

from collections import OrderedDict

from sous_events.contracts import LearningData

# Recipes kept; the least recently used goes first.
CAPACITY = 1024


class KnownLearningData:
    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, str], tuple[int, LearningData]] = OrderedDict()

    def get(self, workspace_id: str, template_id: str, version: int) -> LearningData | None:
        """The recipe's learning_data at `version`, when known."""
        key = (workspace_id, template_id)
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, workspace_id: str, template_id: str, version: int, learning_data: LearningData) -> None:
        """Only a committed version: what a transaction that may still roll back wrote is not known."""
        key = (workspace_id, template_id)
        self._entries[key] = (version, learning_data)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)


# One per process: the versions are the store's, the same for every unit of work of the service.
KNOWN = KnownLearningData()
