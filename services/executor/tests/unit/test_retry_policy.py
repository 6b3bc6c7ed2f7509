"""Unit tests: which retry settings a step gets, and what a failed attempt leads to."""

from __future__ import annotations

import random

import pytest

from sous_executor.domain.outcomes import StepOutcome
from sous_executor.domain.planning import StepSpec
from sous_executor.domain.retry_policy import NOT_RETRYABLE, RetryRule, after_failure

pytestmark = pytest.mark.unit


def spec(**overrides: object) -> StepSpec:
    return StepSpec.from_dict({"step_id": "s", "agent_id": "a", "prompt_template": "p", **overrides}, 0)


def test_rule_takes_the_step_then_the_recipe_then_the_defaults() -> None:
    assert RetryRule.of(spec(), {}) == RetryRule("stop", 1, 5.0, 300.0)
    config = {"max_retries": 4, "retry_delay": 2, "max_retry_delay": 30}
    assert RetryRule.of(spec(error_handling="retry"), config) == RetryRule("retry", 4, 2.0, 30.0)
    own = spec(error_handling="retry", max_retries=0, retry_delay=0.5)
    assert RetryRule.of(own, config) == RetryRule("retry", 0, 0.5, 30.0)


def test_rule_retries_up_to_max_retries_then_stops() -> None:
    rule = RetryRule.of(spec(error_handling="retry", max_retries=2), {})
    assert [rule.after_failure("model_error", n).retry for n in (1, 2, 3)] == [True, True, False]
    assert rule.after_failure("model_error", 3).outcome is StepOutcome.STOP
    assert rule.after_failure("model_error", 1).outcome is None


@pytest.mark.parametrize("error_type", sorted(NOT_RETRYABLE))
def test_failures_a_new_attempt_cannot_fix_are_never_retried(error_type: str) -> None:
    assert not after_failure(error_type, "retry", 1, 10).retry


def test_final_outcome_follows_error_handling_and_budget_always_stops_the_run() -> None:
    assert after_failure("timeout", "continue", 1, 0).outcome is StepOutcome.CONTINUE
    assert after_failure("timeout", "stop", 1, 0).outcome is StepOutcome.STOP
    assert after_failure("budget", "continue", 1, 0).outcome is StepOutcome.BUDGET
    assert after_failure("budget", "retry", 1, 5).outcome is StepOutcome.BUDGET


def test_rule_delay_doubles_from_the_step_delay_up_to_the_cap() -> None:
    rule = RetryRule.of(spec(retry_delay=1.5), {"max_retry_delay": 5})
    assert [rule.delay(n) for n in (1, 2, 3)] == [1.5, 3.0, 5.0]
    assert 1.5 <= rule.delay(1, jitter=0.5, rng=random.Random(3)) <= 2.25
