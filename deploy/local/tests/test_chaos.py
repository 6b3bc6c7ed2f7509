"""The chaos soak's own logic: fault plan and pacing, the report's verdict, prompt tags, options."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from sous_local.chaos import checks
from sous_local.chaos.__main__ import parse
from sous_local.chaos.infra import SERVICE_NAMES, ChaosSystem
from sous_local.chaos.soak import Options, Soak, plan_faults
from sous_local.chaos.workload import recipe_kinds

pytestmark = pytest.mark.unit


def _options(**kw: Any) -> Options:
    return Options(**{"executions": 100, "broker": "kafka", "seed": 3, "kills_per_service": 1, **kw})


def test_the_plan_kills_every_service_and_restarts_postgres_and_the_broker_and_cuts_the_database() -> None:
    system = ChaosSystem(Path("/nonexistent"), "kafka")
    faults = plan_faults(system, _options(kills_per_service=2), random.Random(3))
    names = [f.name for f in faults]
    for service in SERVICE_NAMES:
        assert sum(name.startswith(f"SIGKILL {service},") for name in names) == 2
    assert sum("PostgreSQL" in name for name in names) == 1
    assert sum("broker" in name for name in names) == 1
    assert sum("database connections" in name for name in names) == 1
    assert names == [f.name for f in plan_faults(system, _options(kills_per_service=2), random.Random(3))]


def test_submissions_wait_for_each_fault_half_a_segment_after_it_fires() -> None:
    soak = Soak.__new__(Soak)
    soak.options = _options(executions=100)
    soak.fault_count = 4  # segments of 20 executions: faults fire at 20, 40, 60, 80
    assert [soak._threshold(n) for n in range(4)] == [20, 40, 60, 80]
    assert soak._faults_due(29) == 0
    assert soak._faults_due(30) == 1  # the 31st submission waits for the first fault to be over
    assert soak._faults_due(99) == 4


def test_one_failing_figure_fails_the_report_and_unbounded_ones_never_do() -> None:
    report = checks.Report()
    report.add("reported only", 123, None)
    report.add("calls per attempt", 1.0, 1.0)
    assert report.ok
    report.add("executions lost", 1)
    assert not report.ok
    assert "FAIL" in report.render()


def test_the_prompt_tag_names_the_step_even_when_earlier_answers_follow_it() -> None:
    text = "chaos-1 step=draft key=k-7 Draft from: Offline answer: chaos-1 step=outline key=k-7 Outline"
    found = checks._TAG.search(text)
    assert found is not None and (found["key"], found["step"]) == ("k-7", "draft")


def test_every_recipe_step_starts_with_the_tag_and_the_mix_covers_poison_outputs() -> None:
    kinds = recipe_kinds("chaos-x")
    assert sum(k.weight for k in kinds) == pytest.approx(1.0)
    prompts = [s["prompt_template"] for k in kinds for s in k.steps]
    assert all(p.startswith("chaos-x step=") for p in prompts)
    assert any("[[nul]]" in p for p in prompts) and any("[[huge:" in p for p in prompts)
    assert any(s.get("depends_on") for k in kinds for s in k.steps)


def test_options_are_validated() -> None:
    options, keep = parse(["--executions", "7", "--broker", "embedded", "--seed", "9"])
    assert (options.executions, options.broker, options.seed, keep) == (7, "embedded", 9, False)
    with pytest.raises(SystemExit):
        parse(["--executions", "0"])
    with pytest.raises(SystemExit):
        parse(["--broker", "rabbit"])
