"""A recipe version's promotion as the catalog records it: the replays it started and the report it decided on.

Written out whole (every field, defaults included), as the catalog's promote route answers them; every field
has a default, so a report stored before it was typed still decodes.
"""

from __future__ import annotations

from pydantic import Field

from sous_events.contracts.base import Record


class PromotionReplay(Record):
    """A replay a promotion started: the execution replayed with the proposed version, and the replay."""

    execution_id: str = ""
    replay_execution_id: str = ""


class ReplayOutcome(Record):
    """One replay as the promotion saw it: the execution replayed, the replay, their quality and cost."""

    execution_id: str = ""
    replay_execution_id: str = ""
    status: str = ""
    finished: bool = False
    error: str | None = None
    original_quality: float | None = None
    replay_quality: float | None = None
    original_cost_usd: float = 0.0
    replay_cost_usd: float = 0.0
    changed_steps: list[str] = Field(default_factory=list)
    rerun_steps: list[str] = Field(default_factory=list)
    changed_outputs: list[str] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Finished, with a quality score for both sides: enough to be compared."""
        return self.finished and self.original_quality is not None and self.replay_quality is not None


class PromotionReport(Record):
    """What the promotion decided and why: kept on the version and returned by the promote route."""

    revision: int = 0
    promoted: bool = False
    reasons: list[str] = Field(default_factory=list)
    executions_replayed: int = 0
    baseline_quality: float | None = None
    candidate_quality: float | None = None
    quality_delta: float | None = None
    quality_tolerance: float = 0.0
    baseline_cost_usd: float = 0.0
    candidate_cost_usd: float = 0.0
    cost_ceiling_usd: float = 0.0
    replays: list[ReplayOutcome] = Field(default_factory=list)
