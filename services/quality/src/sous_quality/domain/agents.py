"""Agent metrics: what an agent did across runs (docs/quality-model.md, "Sous:" agent-level metrics).

A run of an agent is a step's final outcome: StepCompleted (a success) or StepFailed without a retry to
come (a failure). Failed attempts that will be retried are not runs, but their tokens and cost count,
because they were spent. Reused results (rerun from a step) are neither runs nor spending.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AgentTotals:
    runs: int = 0
    successes: int = 0
    total_duration_ms: float = 0.0
    total_tokens: int = 0
    total_cost_usd: float = 0.0

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
