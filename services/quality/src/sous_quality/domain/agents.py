"""Agent metrics: what an agent did across runs (docs/quality-model.md, "Sous:" agent-level metrics).

A run of an agent is a step's final outcome: StepCompleted (a success) or StepFailed without a retry to
come (a failure). Failed attempts that will be retried are not runs, but their tokens and cost count,
because they were spent. Reused results (rerun from a step) are neither runs nor spending.

Attempts are counted as their outcomes arrive, into a staging row per consumer batch (`agent_attempts`, in
the batch's transaction); at most once per window (`SOUS_AGENT_METRICS_WINDOW_S`) an agent's staged
attempts are taken and one AgentMetricsUpdated with the totals after them is appended, in one transaction.
The state is the agent's stream plus its staged rows, so neither a crash nor a rebuild loses an attempt,
and a busy agent costs one event per window instead of one per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sous_events.contracts import AgentMetricsSnapshot
from sous_events.events import AgentMetricsUpdated

AGGREGATE = "AgentMetrics"


@dataclass(frozen=True)
class AgentTotals:
    runs: int = 0
    successes: int = 0
    total_duration_ms: float = 0.0
    total_tokens: int = 0
    total_cost_usd: float = 0.0

    @classmethod
    def from_metrics(cls, metrics: AgentMetricsSnapshot) -> AgentTotals:
        """The totals an AgentMetricsUpdated carries (older events had only the mean duration)."""
        duration = metrics.total_duration_ms
        return cls(
            runs=metrics.runs,
            successes=metrics.successes,
            total_duration_ms=duration if duration is not None else metrics.mean_duration_ms * metrics.runs,
            total_tokens=metrics.total_tokens,
            total_cost_usd=metrics.total_cost_usd,
        )

    def with_attempt(
        self, *, final: bool, success: bool, duration_ms: float, tokens: int, cost_usd: float
    ) -> AgentTotals:
        return AgentTotals(
            runs=self.runs + (1 if final else 0),
            successes=self.successes + (1 if final and success else 0),
            total_duration_ms=self.total_duration_ms + (duration_ms if final else 0.0),
            total_tokens=self.total_tokens + tokens,
            total_cost_usd=self.total_cost_usd + cost_usd,
        )

    def plus(self, other: AgentTotals) -> AgentTotals:
        return AgentTotals(
            runs=self.runs + other.runs,
            successes=self.successes + other.successes,
            total_duration_ms=self.total_duration_ms + other.total_duration_ms,
            total_tokens=self.total_tokens + other.total_tokens,
            total_cost_usd=self.total_cost_usd + other.total_cost_usd,
        )

    @classmethod
    def of_attempts(cls, attempts: Sequence[Attempt]) -> AgentTotals:
        """What `attempts` add to an agent's totals."""
        totals = cls()
        for attempt in attempts:
            totals = totals.with_attempt(
                final=attempt.final,
                success=attempt.success,
                duration_ms=attempt.duration_ms,
                tokens=attempt.tokens,
                cost_usd=attempt.cost_usd,
            )
        return totals

    def metrics(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "successes": self.successes,
            "success_rate": round(self.successes / self.runs, 4) if self.runs else 0.0,
            "mean_duration_ms": round(self.total_duration_ms / self.runs, 2) if self.runs else 0.0,
            "total_tokens": self.total_tokens,
            # Fine enough that totals rebuilt from a long chain of these events do not drift from the live ones.
            "total_cost_usd": round(self.total_cost_usd, 10),
            "total_duration_ms": round(self.total_duration_ms, 3),
        }


@dataclass(frozen=True)
class Attempt:
    """A step's outcome as its agent counts it: `final` when no retry follows (a run), `success` if it succeeded."""

    final: bool
    success: bool
    duration_ms: float
    tokens: int
    cost_usd: float


@dataclass(frozen=True)
class AgentMetrics:
    """The AgentMetrics aggregate: an agent's totals at its stream's version.

    Every AgentMetricsUpdated carries the whole totals, so the latest event is the state; the
    `agent_metrics` row keeps it at the stream's version and the handlers decide from it as from a snapshot.
    """

    agent_id: str
    totals: AgentTotals = field(default_factory=AgentTotals)
    version: int = 0

    def count(
        self, *, final: bool, success: bool, duration_ms: float, tokens: int, cost_usd: float
    ) -> AgentMetricsUpdated:
        return self.count_totals(AgentTotals.of_attempts([Attempt(final, success, duration_ms, tokens, cost_usd)]))

    def count_totals(self, added: AgentTotals) -> AgentMetricsUpdated:
        """The totals after `added` (attempts counted since the last event), in one event."""
        return AgentMetricsUpdated(agent_id=self.agent_id, metrics=self.totals.plus(added).metrics())

    def applied(self, event: AgentMetricsUpdated, version: int) -> AgentMetrics:
        """The state after one of its events (live and on rebuild)."""
        return AgentMetrics(self.agent_id, AgentTotals.from_metrics(event.metrics), version)
