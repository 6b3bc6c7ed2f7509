"""Promotion of a proposed recipe version to current, decided from what-if replays of past executions.

A proposed version is a revision of the recipe's stream that is not current (RecipeVersionProposed). To
promote it, the recipe's last K finished executions are replayed with it (the executor's what-if replay:
only the changed steps and their descendants run again). It becomes current only when the replays are not
worse on quality than the executions they replay (mean quality score, within a tolerance) and their cost
stays within the ceiling (a ratio of the recorded cost, and optionally an amount per run). The report of
that decision is kept on the version, whichever way it went.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sous_events.contracts import PromotionReport, ReplayOutcome

__all__ = ["PromotionPolicy", "PromotionReport", "ReplayOutcome", "cost_ceiling", "decide", "outcome_from_report"]


@dataclass(frozen=True)
class PromotionPolicy:
    """`executions`: how many of the latest finished executions are replayed (K)."""

    executions: int = 5
    quality_tolerance: float = 0.0
    cost_ceiling_ratio: float = 1.2
    max_cost_usd: float | None = None


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def cost_ceiling(policy: PromotionPolicy, baseline_cost_usd: float) -> float:
    """Mean cost per run the version may reach: the ratio of the recorded cost, capped by the amount if set."""
    ceiling = baseline_cost_usd * policy.cost_ceiling_ratio
    if policy.max_cost_usd is not None:
        ceiling = min(ceiling, policy.max_cost_usd) if baseline_cost_usd > 0 else policy.max_cost_usd
    return round(ceiling, 6)


def decide(policy: PromotionPolicy, revision: int, outcomes: Sequence[ReplayOutcome]) -> PromotionReport:
    """Promote only when every replay finished and was scored, quality did not drop, and cost stayed under the ceiling."""
    reasons: list[str] = []
    if not outcomes:
        reasons.append("the recipe has no finished execution to replay the version against")
    for outcome in outcomes:
        if not outcome.finished:
            reasons.append(f"the replay of execution '{outcome.execution_id}' did not finish ({outcome.status})")
        elif not outcome.complete:
            reasons.append(f"the replay of execution '{outcome.execution_id}' has no quality score to compare")
    scored = [o for o in outcomes if o.complete]
    baseline = _mean([float(o.original_quality or 0.0) for o in scored])
    candidate = _mean([float(o.replay_quality or 0.0) for o in scored])
    delta = round(candidate - baseline, 4) if candidate is not None and baseline is not None else None
    if delta is not None and delta < -policy.quality_tolerance:
        reasons.append(
            f"quality would drop: the replays score {candidate:.2f} on average against {baseline:.2f} "
            f"for the executions they replay ({delta:+.2f}, tolerance {policy.quality_tolerance:.2f})"
        )
    count = max(len(outcomes), 1)
    baseline_cost = round(sum(o.original_cost_usd for o in outcomes) / count, 6)
    candidate_cost = round(sum(o.replay_cost_usd for o in outcomes) / count, 6)
    ceiling = cost_ceiling(policy, baseline_cost)
    if candidate_cost > ceiling:
        reasons.append(
            f"cost would exceed the ceiling: {candidate_cost:.6f} USD per run on average against a ceiling of "
            f"{ceiling:.6f} USD"
        )
    return PromotionReport(
        revision=revision,
        promoted=not reasons,
        reasons=reasons,
        executions_replayed=len(outcomes),
        baseline_quality=baseline,
        candidate_quality=candidate,
        quality_delta=delta,
        quality_tolerance=policy.quality_tolerance,
        baseline_cost_usd=baseline_cost,
        candidate_cost_usd=candidate_cost,
        cost_ceiling_usd=ceiling,
        replays=list(outcomes),
    )


def outcome_from_report(execution_id: str, report: dict[str, Any]) -> ReplayOutcome:
    """Read the executor's replay report (`GET .../executions/{replay}/replay-report`)."""
    totals = report.get("totals") or {}
    original = totals.get("original") or {}
    replay = totals.get("replay") or {}
    return ReplayOutcome(
        execution_id=execution_id,
        replay_execution_id=str(report.get("replay_execution_id") or ""),
        status=str(report.get("status") or ""),
        finished=bool(report.get("finished")),
        error=report.get("error"),
        original_quality=original.get("quality_score"),
        replay_quality=replay.get("quality_score"),
        original_cost_usd=float(original.get("cost_usd") or 0.0),
        replay_cost_usd=float(replay.get("cost_usd") or 0.0),
        changed_steps=list(report.get("changed_steps") or []),
        rerun_steps=list(report.get("rerun_steps") or []),
        changed_outputs=list(report.get("changed_outputs") or []),
    )
