"""The diff of a what-if replay against the execution it replays: per step, then the run's deltas.

Reused steps keep the past execution's recorded usage in the replay's totals (they are what the new
version would have spent on them too), so the deltas compare the two versions of the whole run; what the
replay itself spent is reported apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_DIFF_LINES = 400


def text_diff(before: str, after: str, *, before_name: str = "original", after_name: str = "replay") -> str:
    """A unified diff of two outputs, line by line (empty when they are equal), capped at MAX_DIFF_LINES."""
    if before == after:
        return ""
    lines = list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), fromfile=before_name, tofile=after_name, lineterm="", n=2
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"… {len(lines) - MAX_DIFF_LINES} more diff lines"]
    return "\n".join(lines)


@dataclass(frozen=True)
class StepRecord:
    """One step as an execution recorded it."""

    step_id: str
    status: str
    output: str | None
    tokens: int
    cost_usd: float
    duration_ms: float
    reused: bool = False


@dataclass(frozen=True)
class Usage:
    tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0


def _delta(before: float | None, after: float | None, digits: int) -> float | None:
    if before is None or after is None:
        return None
    return round(after - before, digits)


def step_diff(step_id: str, before: StepRecord | None, after: StepRecord | None) -> dict[str, Any]:
    rerun = after is not None and not after.reused
    old_text = (before.output or "") if before else ""
    new_text = (after.output or "") if after else ""
    changed = before is None or after is None or old_text != new_text or before.status != after.status
    out: dict[str, Any] = {
        "step_id": step_id,
        "rerun": rerun,
        "original_status": before.status if before else None,
        "replay_status": after.status if after else None,
        "output_changed": changed,
        "diff": text_diff(old_text, new_text) if changed else "",
        "original_output": old_text if before else None,
        "replay_output": new_text if after else None,
    }
    if rerun and before is not None and after is not None:
        out["tokens_delta"] = after.tokens - before.tokens
        out["cost_usd_delta"] = round(after.cost_usd - before.cost_usd, 8)
        out["duration_ms_delta"] = round(after.duration_ms - before.duration_ms, 3)
    return out


def replay_diff(
    order: Iterable[str],
    original: dict[str, StepRecord],
    replay: dict[str, StepRecord],
    original_totals: Usage,
    quality: tuple[float | None, float | None],
) -> dict[str, Any]:
    """The per-step diff and the deltas; `quality` is (original score, replay score), None when not assessed."""
    steps = [step_diff(sid, original.get(sid), replay.get(sid)) for sid in order]
    spent = Usage(
        tokens=sum(r.tokens for r in replay.values() if not r.reused),
        cost_usd=sum(r.cost_usd for r in replay.values() if not r.reused),
        duration_ms=sum(r.duration_ms for r in replay.values() if not r.reused),
    )
    # The new version's run: the recorded usage of the steps it reused, the replay's for the rest.
    rerun_before = [original[sid] for sid, r in replay.items() if not r.reused and sid in original]
    removed = [r for sid, r in original.items() if sid not in replay]
    projected = Usage(
        tokens=original_totals.tokens - sum(r.tokens for r in [*rerun_before, *removed]) + spent.tokens,
        cost_usd=original_totals.cost_usd - sum(r.cost_usd for r in [*rerun_before, *removed]) + spent.cost_usd,
        duration_ms=original_totals.duration_ms
        - sum(r.duration_ms for r in [*rerun_before, *removed])
        + spent.duration_ms,
    )
    before_q, after_q = quality
    return {
        "steps": steps,
        "changed_outputs": [s["step_id"] for s in steps if s["output_changed"]],
        "totals": {
            "original": _usage(original_totals) | {"quality_score": before_q},
            "replay": _usage(projected) | {"quality_score": after_q},
            "delta": {
                "tokens": projected.tokens - original_totals.tokens,
                "cost_usd": round(projected.cost_usd - original_totals.cost_usd, 8),
                "duration_ms": round(projected.duration_ms - original_totals.duration_ms, 3),
                "quality_score": _delta(before_q, after_q, 4),
            },
            "replay_spent": _usage(spent),
        },
    }


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "tokens": usage.tokens,
        "cost_usd": round(usage.cost_usd, 8),
        "duration_ms": round(usage.duration_ms, 3),
    }
