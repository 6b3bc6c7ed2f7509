"""Checking a step's answer against its declared output contract (schema and checks, judge excluded).

An answer that fails is an `output_invalid` failure: the step retries under its retry policy, and the next
attempt's prompt carries the failed checks so the model can correct itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.validators import validator_for
from pydantic import ValidationError

from sous_service.json_path import MISSING, lookup
from sous_service.output_checks import (
    ContainsCheck,
    JsonPathCheck,
    JudgeCheck,
    LengthCheck,
    OutputCheck,
    OutputContract,
    RegexCheck,
    compile_pattern,
)

OUTPUT_INVALID = "output_invalid"
MAX_SCHEMA_ERRORS = 5
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?```\s*$", re.DOTALL)


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str
    passed: bool
    message: str = ""
    score: float | None = None

    def as_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.kind, "message": self.message}
        if self.score is not None:
            out["score"] = self.score
        return out


@dataclass(frozen=True)
class Checked:
    """The answer as later steps see it (canonical JSON text when a schema is declared) and its failures."""

    output: str
    value: Any
    failures: tuple[CheckResult, ...]


class ContractError(ValueError):
    """A step's stored contract does not parse (the catalog refuses these; older replicas may hold one)."""


def contract_of(step: Mapping[str, Any]) -> OutputContract:
    try:
        return OutputContract.model_validate(
            {"output_schema": step.get("output_schema"), "checks": step.get("checks") or []}
        )
    except ValidationError as exc:
        raise ContractError(str(exc)) from None


def check_name(check: OutputCheck, index: int) -> str:
    return check.name or f"{check.type}[{index}]"


def parse_json_answer(text: str) -> Any:
    """The JSON value of an answer, accepting a fenced code block around it; raises ValueError."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced["body"].strip()
    return json.loads(body)


def check_output(contract: OutputContract, text: str) -> Checked:
    """Every local check of `contract` on `text` (the judge runs separately, it calls a model)."""
    failures: list[CheckResult] = []
    value: Any = MISSING
    output = text
    needs_json = contract.output_schema is not None or any(isinstance(c, JsonPathCheck) for c in contract.checks)
    if needs_json:
        try:
            value = parse_json_answer(text)
        except ValueError as exc:
            failures.append(CheckResult("output_schema", "json", False, f"the answer is not JSON: {exc}"))
    if contract.output_schema is not None and value is not MISSING:
        validator = validator_for(contract.output_schema)(contract.output_schema)
        errors = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            detail = "; ".join(_schema_error(e) for e in errors[:MAX_SCHEMA_ERRORS])
            failures.append(CheckResult("output_schema", "schema", False, detail))
        else:
            output = json.dumps(value, ensure_ascii=False)
    for index, check in enumerate(contract.checks):
        if isinstance(check, JudgeCheck):
            continue
        result = _run(check, check_name(check, index), text, value)
        if not result.passed:
            failures.append(result)
    return Checked(output, None if value is MISSING else value, tuple(failures))


def judge_verdict(check: JudgeCheck, name: str, answer: str) -> CheckResult:
    """The judge's answer read as `{"score": 0..1, "reason": ...}` (a bare number is accepted too)."""
    try:
        parsed = parse_json_answer(answer)
    except ValueError:
        match = re.search(r"-?\d+(?:\.\d+)?", answer)
        parsed = float(match.group(0)) if match else None
    raw = parsed.get("score") if isinstance(parsed, dict) else parsed
    reason = str(parsed.get("reason") or "") if isinstance(parsed, dict) else ""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return CheckResult(name, "judge", False, "the judge gave no score")
    score = max(0.0, min(1.0, float(raw)))
    passed = score >= check.threshold
    message = f"judge scored {score:g} (threshold {check.threshold:g})" + (f": {reason}" if reason else "")
    return CheckResult(name, "judge", passed, "" if passed else message, score)


def feedback(failures: Sequence[Mapping[str, Any]], schema: Mapping[str, Any] | None) -> str:
    """What the next attempt's prompt adds: the failed checks, and the schema to follow."""
    lines = ["", "", "Your previous answer was rejected because it failed these checks:"]
    lines += [f"- {f.get('name')}: {f.get('message')}" for f in failures]
    lines.append("Answer again so that every check passes.")
    if schema is not None:
        lines.append(schema_instruction(schema).strip())
    return "\n".join(lines)


def schema_instruction(schema: Mapping[str, Any]) -> str:
    return "\n\nAnswer with JSON only, matching this JSON Schema: " + json.dumps(schema, sort_keys=True)


def _schema_error(error: Any) -> str:
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where or '(root)'}: {error.message}"


def _run(check: OutputCheck, name: str, text: str, value: Any) -> CheckResult:
    if isinstance(check, RegexCheck):
        found = compile_pattern(check.pattern, check.flags).search(text) is not None
        return CheckResult(name, "regex", found, "" if found else f"no match for /{check.pattern}/")
    if isinstance(check, ContainsCheck):
        haystack, needle = (text, check.value) if check.case_sensitive else (text.lower(), check.value.lower())
        present = needle in haystack
        wanted = check.type == "contains"
        verb = "does not contain" if wanted else "contains"
        return CheckResult(name, check.type, present == wanted, "" if present == wanted else f"{verb} {check.value!r}")
    if isinstance(check, LengthCheck):
        size = len(text)
        if check.min is not None and size < check.min:
            return CheckResult(name, "length", False, f"{size} characters, fewer than {check.min}")
        if check.max is not None and size > check.max:
            return CheckResult(name, "length", False, f"{size} characters, more than {check.max}")
        return CheckResult(name, "length", True)
    assert isinstance(check, JsonPathCheck)
    return _path_check(check, name, value)


def _path_check(check: JsonPathCheck, name: str, value: Any) -> CheckResult:
    if value is MISSING:
        return CheckResult(name, "json_path", False, "the answer is not JSON")
    found = lookup(value, check.path)
    if found is MISSING:
        ok = not check.exists
        return CheckResult(name, "json_path", ok, "" if ok else f"{check.path} is missing")
    if not check.exists:
        return CheckResult(name, "json_path", False, f"{check.path} is present")
    problem = _value_problem(check, found)
    return CheckResult(name, "json_path", problem is None, problem or "")


def _value_problem(check: JsonPathCheck, found: Any) -> str | None:
    if check.equals is not None and found != check.equals:
        return f"{check.path} is {json.dumps(found)}, not {json.dumps(check.equals)}"
    if check.matches is not None and not compile_pattern(check.matches).search(
        found if isinstance(found, str) else json.dumps(found)
    ):
        return f"{check.path} does not match /{check.matches}/"
    if check.min is not None or check.max is not None:
        if isinstance(found, bool) or not isinstance(found, int | float):
            return f"{check.path} is not a number"
        if check.min is not None and found < check.min:
            return f"{check.path} is {found:g}, below {check.min:g}"
        if check.max is not None and found > check.max:
            return f"{check.path} is {found:g}, above {check.max:g}"
    return None


def output_views(output: str | None, output_format: str, check_failures: list[dict[str, Any]]) -> dict[str, Any]:
    """Extra keys of a step's result: its parsed JSON output and the attempts its checks refused."""
    out: dict[str, Any] = {}
    if output_format == "json" and output:
        try:
            out["output_json"] = json.loads(output)
        except ValueError:
            pass  # cut to the event size cap: the text stays the output
    if check_failures:
        out["check_failures"] = check_failures
    return out


def referenced_agents(steps: Sequence[Mapping[str, Any]]) -> set[str]:
    """The agents steps run with: each step's own and its judges'."""
    found = {str(s.get("agent_id")) for s in steps if s.get("agent_id")}
    for step in steps:
        for check in step.get("checks") or []:
            if isinstance(check, Mapping) and check.get("type") == "judge" and check.get("agent_id"):
                found.add(str(check["agent_id"]))
    return found
