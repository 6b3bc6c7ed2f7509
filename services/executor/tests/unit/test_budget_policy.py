"""Unit tests: one budget rule, over budget (the run fails) versus spent (no new call starts)."""

from __future__ import annotations

import pytest

from sous_executor.domain.budget_policy import Admission, Ledger, Limits, exceeded, exhausted

pytestmark = pytest.mark.unit


def test_limits_come_from_the_execution_config() -> None:
    assert Limits.from_config({}) == Limits()
    assert Limits.from_config({}).unlimited
    assert Limits.from_config({"max_tokens": "100", "max_cost_usd": 2}) == Limits(100, 2.0)
    assert Limits.from_config({"max_tokens": 0}) == Limits(max_tokens=0)


@pytest.mark.parametrize(
    ("tokens", "cost", "over", "spent"),
    [
        (99, 0.0, False, False),
        (100, 0.0, False, True),  # at the limit: no new call, but not over budget
        (101, 0.0, True, True),
        (0, 1.0, False, True),
        (0, 1.5, True, True),
    ],
)
def test_one_rule_decides_both_questions(tokens: int, cost: float, over: bool, spent: bool) -> None:
    limits = Limits(max_tokens=100, max_cost_usd=1.0)
    assert (exceeded(limits, tokens, cost) is not None) is over
    assert (exhausted(limits, tokens, cost) is not None) is spent


def test_messages_name_the_budget_the_spend_and_the_limit() -> None:
    limits = Limits(max_tokens=100, max_cost_usd=1.0)
    assert exceeded(limits, 101, 0.0) == "token budget exceeded: 101 > max_tokens 100"
    assert exceeded(limits, 5, 1.5) == "cost budget exceeded: 1.500000 > max_cost_usd 1.0"
    assert exhausted(limits, 100, 0.0) == "token budget exhausted: 100 of max_tokens 100 spent"
    assert exceeded(Limits(), 10**9, 10.0**9) is None


def test_ledger_verdicts_are_typed() -> None:
    ledger = Ledger(Limits(max_cost_usd=1.0))
    verdict, ticket = ledger.admit(0, 0.5, 10**6)  # no token limit: any estimate fits
    assert verdict is Admission.GO and ticket is not None
    assert ledger.admit(0, 1.0, 1) == (Admission.REFUSE, None)
