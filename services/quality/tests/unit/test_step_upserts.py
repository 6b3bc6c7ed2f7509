"""Unit tests: a finish's summary writes its steps in one statement, each step once, and leaves unchanged rows be."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sous_quality.adapters import copies

pytestmark = pytest.mark.unit


def session() -> Any:
    """What the upserts use of a session: its `info` (the staged outcomes); statements are recorded apart."""
    return SimpleNamespace(info={})


def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    sent: list[tuple[str, tuple[Any, ...]]] = []

    async def run(_session: Any, sql: str, *parameters: Any) -> None:
        sent.append((sql, parameters))

    monkeypatch.setattr(copies.statements, "execute", run)
    return sent


async def test_the_steps_of_a_summary_go_in_one_statement_each_once(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = recorded(monkeypatch)
    summary = [
        ("a", {"status": "completed", "attempts": 1}),
        ("b", {"status": "failed", "attempts": 2}),
        ("a", {"status": "completed", "attempts": 3}),  # named twice: its last values
    ]
    await copies.upsert_steps(session(), "e1", summary)

    [(sql, parameters)] = sent
    width = 2 + len(copies.STEP_DEFAULTS)
    assert len(parameters) == 2 * width
    assert [parameters[0:2], parameters[width : width + 2]] == [("e1", "a"), ("e1", "b")]
    assert parameters[list(copies.STEP_DEFAULTS).index("attempts") + 2] == 3
    assert f"${width + 8}::jsonb" in sql  # the second row's output
    # Only what the summary gives is changed, and a row it would not change is not written again.
    assert 'DO UPDATE SET "status" = EXCLUDED."status", attempts = GREATEST(s.attempts, EXCLUDED.attempts)' in sql
    assert 'WHERE s."status" IS DISTINCT FROM EXCLUDED."status" OR s.attempts < EXCLUDED.attempts' in sql


async def test_steps_that_give_different_columns_go_in_a_statement_each(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = recorded(monkeypatch)
    await copies.upsert_steps(
        session(), "e1", [("a", {"status": "skipped"}), ("b", {"status": "completed", "output": "x"})]
    )
    assert len(sent) == 2
    with pytest.raises(ValueError, match="no column"):
        await copies.upsert_steps(session(), "e1", [("a", {"colour": "red"})])


async def test_a_runs_staged_outcomes_are_one_statement_written_before_its_summary(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = recorded(monkeypatch)
    batch = session()
    copies.stage_step(batch, "e1", "a", status="failed", error="boom", attempts=1)
    copies.stage_step(batch, "e1", "a", status="completed", output="ok", error=None, attempts=2)  # a retry
    copies.stage_step(batch, "e1", "b", status="completed", output="ok", error=None, attempts=1)
    copies.stage_step(batch, "e2", "a", status="skipped")
    assert sent == []  # nothing is written while the batch's records are handled

    await copies.upsert_steps(batch, "e1", [("a", {"status": "completed", "attempts": 2})])  # e1's summary
    outcomes, summary = sent
    width = 2 + len(copies.STEP_DEFAULTS)
    assert [outcomes[1][0:2], outcomes[1][width : width + 2]] == [("e1", "a"), ("e1", "b")]
    merged = dict(zip(copies.STEP_DEFAULTS, outcomes[1][2:width], strict=True))
    assert (merged["status"], merged["error"], merged["attempts"], merged["output"]) == ("completed", None, 2, '"ok"')
    assert summary[1][0:2] == ("e1", "a")

    await copies.flush_steps(batch)  # the batch's end: e2's outcome
    assert [parameters[0:2] for _, parameters in sent[2:]] == [("e2", "a")]
    await copies.flush_steps(batch)
    assert len(sent) == 3
