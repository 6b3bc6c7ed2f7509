"""Stage 2: each subtask gets the agent that best covers its skills, weighed by the agent's track record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# With no runs yet an agent is neither trusted nor distrusted.
UNKNOWN_SUCCESS_RATE = 0.5
SKILL_WEIGHT = 0.7
METRIC_WEIGHT = 0.3


class NoAgent(Exception):
    pass


def _score(skills: list[str], agent: Mapping[str, Any], metrics: Mapping[str, Any] | None) -> tuple[float, str]:
    have = {str(s) for s in agent.get("skills") or []}
    covered = [s for s in skills if s in have]
    coverage = len(covered) / len(skills) if skills else 1.0
    runs = int((metrics or {}).get("runs") or 0)
    rate = float((metrics or {}).get("success_rate") or 0.0) if runs else UNKNOWN_SUCCESS_RATE
    score = round(SKILL_WEIGHT * coverage + METRIC_WEIGHT * rate, 4)
    skill_text = (
        f"covers {len(covered)}/{len(skills)} required skills ({', '.join(skills)})" if skills else "no skills required"
    )
    metric_text = f"success rate {rate:.2f} over {runs} runs" if runs else "no recorded runs yet"
    return score, f"{skill_text}; {metric_text}"


def select_agents(
    subtasks: list[dict[str, Any]],
    agents: list[dict[str, Any]],
    metrics: Mapping[str, Mapping[str, Any]],
    allowed_tools: list[str] | None = None,
) -> list[dict[str, Any]]:
    """One assignment per subtask: agent, score and the reason it won (ties go to the name first in order)."""
    candidates = sorted(
        (a for a in agents if str(a.get("status") or "active") == "active"), key=lambda a: str(a.get("name"))
    )
    if not candidates:
        raise NoAgent("the workspace has no active agent this workflow may use")
    assignments = []
    for subtask in subtasks:
        skills = [str(s) for s in subtask.get("skills") or []]
        dropped = [s for s in skills if allowed_tools is not None and s not in allowed_tools]
        skills = [s for s in skills if s not in dropped]
        scored = [(*_score(skills, a, metrics.get(str(a["id"]))), a) for a in candidates]
        best_score, reason, best = max(scored, key=lambda item: item[0])
        if len(scored) > 1:
            reason += f"; best of {len(scored)} agents (score {best_score})"
        if dropped:
            reason += f"; skills not allowed by the workflow ignored: {', '.join(dropped)}"
        assignments.append(
            {
                "subtask_id": subtask["id"],
                "agent_id": str(best["id"]),
                "agent_name": str(best.get("name") or ""),
                "score": best_score,
                "reason": reason,
            }
        )
    return assignments
