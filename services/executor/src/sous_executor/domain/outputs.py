"""Step outputs in events: each output is stored once (in its StepCompleted), cut to a byte cap.

`ExecutionFinished` carries a summary instead of repeating every output two or three times: step results
without `output`/`tool_calls`, and `output_data` values cut to a short preview, with `output_refs`
naming the step whose StepCompleted holds each one in full.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TRUNCATION_MARKER = "\n[… output truncated by Sous: {kept} of {total} characters kept]"
PREVIEW_CHARS = 2000
# Keys of a step result that the summary leaves to the step's own StepCompleted.
# Left out of a step result wherever it is carried whole within another event (a finished run's summary, a
# rerun's kept steps): together they could outgrow one event, and each step's own events hold them.
HEAVY_RESULT_KEYS = ("output", "tool_calls", "output_json", "check_failures")


@dataclass(frozen=True)
class CutText:
    text: str
    truncated: bool
    original_chars: int


def json_size(text: str) -> int:
    """Bytes `text` takes inside an encoded event (escapes included)."""
    return len(json.dumps(text, ensure_ascii=False).encode())


def cut_to_bytes(text: str, max_bytes: int) -> CutText:
    """`text` if its encoded form fits `max_bytes`, else a prefix that fits plus a truncation marker."""
    if json_size(text) <= max_bytes:
        return CutText(text, False, len(text))
    total = len(text)
    marker_room = json_size(TRUNCATION_MARKER.format(kept=total, total=total))
    budget = max(0, max_bytes - marker_room)
    keep = min(total, budget)
    # Escapes make some characters larger than one byte; shrink until the prefix fits.
    while keep > 0 and json_size(text[:keep]) > budget:
        over = json_size(text[:keep]) - budget
        keep = max(0, keep - max(over // 4, 1))
    return CutText(text[:keep] + TRUNCATION_MARKER.format(kept=keep, total=total), True, total)


def preview(value: Any, chars: int = PREVIEW_CHARS) -> Any:
    if isinstance(value, str) and len(value) > chars:
        return value[:chars] + TRUNCATION_MARKER.format(kept=chars, total=len(value))
    return value


@dataclass(frozen=True)
class OutputSource:
    step_id: str
    status: str
    output: str | None


def output_data(
    steps_in_order: Iterable[OutputSource], output_keys: Mapping[str, str], recipe_outputs: Iterable[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The run's output_data and, per name, the step it comes from.

    `output_keys` maps a step's `output_key` to its step id; `recipe_outputs` are the recipe's declared
    output names, which may name a step id directly.
    """
    steps = list(steps_in_order)
    by_id = {s.step_id: s for s in steps}
    completed = [s for s in steps if s.status == "completed"]
    out: dict[str, Any] = {}
    refs: dict[str, str] = {}
    for key, sid in output_keys.items():
        source = by_id.get(sid)
        if source is not None and source.status == "completed":
            out[key], refs[key] = source.output, sid
    for name in recipe_outputs:
        source = by_id.get(name)
        if name not in out and source is not None and source.status == "completed":
            out[name], refs[name] = source.output, name
    out["final_output"] = completed[-1].output if completed else None
    if completed:
        refs["final_output"] = completed[-1].step_id
    out["steps"] = {s.step_id: s.output for s in completed}
    return out, refs


def summary_output_data(full: Mapping[str, Any]) -> dict[str, Any]:
    """What ExecutionFinished carries: every name kept (consumers check presence), values as previews."""
    return {key: preview(value) for key, value in full.items() if key != "steps"}


def summary_result(result: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in result.items() if k not in HEAVY_RESULT_KEYS}
    output = result.get("output")
    out["output_chars"] = len(output) if isinstance(output, str) else 0
    out["tool_call_count"] = len(result.get("tool_calls") or [])
    return out
