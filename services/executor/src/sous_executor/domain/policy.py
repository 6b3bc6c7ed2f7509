"""Pure rules of a step's fate: retry or not, crash loops, which outcome event is the step's one."""

from __future__ import annotations

from dataclasses import dataclass

# Failures that a new attempt cannot fix (or that would loop forever if retried).
NOT_RETRYABLE = frozenset({"budget", "tool_not_allowed", "config_error", "prompt_error", "crash_loop"})
FINAL_STEP_STATUSES = frozenset({"completed", "failed", "skipped", "cancelled"})


@dataclass(frozen=True)
class Decision:
    retry: bool
    outcome: str  # after a final failure: "stop" | "continue" | "budget"


def after_failure(error_type: str, error_handling: str, attempt: int, max_retries: int) -> Decision:
    """A failed attempt (1-based) retries under `retry` while attempts <= max_retries; then the handling rules."""
    if error_handling == "retry" and error_type not in NOT_RETRYABLE and attempt <= max_retries:
        return Decision(True, "")
    if error_type == "budget":
        return Decision(False, "budget")
    return Decision(False, "continue" if error_handling == "continue" else "stop")


def is_crash_loop(unfinished_starts: int, limit: int) -> bool:
    """A step started `limit` times in a row with no outcome recorded: the runner keeps dying on it."""
    return unfinished_starts >= limit


def accepts_outcome(status: str, current_attempt: int, outcome_attempt: int) -> bool:
    """Whether a StepCompleted/StepFailed for `outcome_attempt` may still be recorded.

    One outcome per attempt and none once the step is final: a cancel or abort racing the step's own
    completion loses (or wins) cleanly instead of recording the step twice.
    """
    if status in FINAL_STEP_STATUSES:
        return False
    return outcome_attempt >= current_attempt
