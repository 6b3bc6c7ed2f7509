"""The output contract a recipe step may declare: a JSON Schema its answer must match and checks it must pass.

The catalog validates these when a recipe is written (bad schema, regex or path: 422 with the field path);
the executor checks every answer against them and retries the step with the failed checks as feedback.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from jsonschema import SchemaError
from jsonschema.validators import validator_for
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from sous_service.json_path import JsonPathError, parse_path

REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
MAX_PATTERN_CHARS = 2000


def compile_pattern(pattern: str, flags: str = "") -> re.Pattern[str]:
    value = 0
    for flag in flags:
        value |= REGEX_FLAGS[flag]
    return re.compile(pattern, value)


def _valid_pattern(pattern: str, flags: str = "") -> str:
    try:
        compile_pattern(pattern, flags)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return pattern


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str | None = Field(default=None, max_length=200, description="How failures name this check")


class RegexCheck(_Check):
    type: Literal["regex"]
    # Before `pattern`: its validator compiles the pattern with these flags.
    flags: str = Field(default="", pattern=r"^[ims]*$", description="i: ignore case, m: multiline, s: dot-all")
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str, info: ValidationInfo) -> str:
        return _valid_pattern(pattern, str(info.data.get("flags") or ""))


class ContainsCheck(_Check):
    type: Literal["contains", "not_contains"]
    value: str = Field(min_length=1, max_length=10_000)
    case_sensitive: bool = True


class LengthCheck(_Check):
    type: Literal["length"]
    min: int | None = Field(default=None, ge=0, le=10**9)
    max: int | None = Field(default=None, ge=0, le=10**9)

    @model_validator(mode="after")
    def _bounded(self) -> LengthCheck:
        if self.min is None and self.max is None:
            raise ValueError("min or max is required")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class JsonPathCheck(_Check):
    """An assertion on one value of the JSON answer: it exists, equals, matches, lies within min..max."""

    type: Literal["json_path"]
    path: str = Field(min_length=1, max_length=500)
    exists: bool = True
    equals: Any = None
    matches: str | None = Field(default=None, max_length=MAX_PATTERN_CHARS)
    min: float | None = None
    max: float | None = None

    @field_validator("path")
    @classmethod
    def _parses(cls, path: str) -> str:
        try:
            parse_path(path)
        except JsonPathError as exc:
            raise ValueError(str(exc)) from None
        return path

    @field_validator("matches")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        return None if pattern is None else _valid_pattern(pattern)


class JudgeCheck(_Check):
    """A judge agent scores the answer against a rubric (0..1); below `threshold` fails."""

    type: Literal["judge"]
    rubric: str = Field(min_length=1, max_length=20_000)
    threshold: float = Field(default=0.7, ge=0, le=1)
    agent_id: str | None = Field(default=None, min_length=1, max_length=200, description="Default: the step's")


OutputCheck = Annotated[
    RegexCheck | ContainsCheck | LengthCheck | JsonPathCheck | JudgeCheck, Field(discriminator="type")
]


def schema_errors(schema: Any) -> list[str]:
    """Why `schema` is not a usable JSON Schema (empty when it is)."""
    if not isinstance(schema, dict):
        return ["a JSON Schema object is required"]
    if "$schema" in schema and not isinstance(schema["$schema"], str):
        return ["$schema must be a string"]
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return [f"{exc.message}" + (f" (at {where})" if where else "")]
    if _has_remote_ref(schema):
        return ["$ref may only point inside the schema (#...)"]
    return []


def _has_remote_ref(value: Any) -> bool:
    """Answers are validated offline: a `$ref` outside the schema would be fetched or fail at run time."""
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            return True
        return any(_has_remote_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_remote_ref(v) for v in value)
    return False


def usable_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    errors = [] if schema is None else schema_errors(schema)
    if errors:
        raise ValueError("not a valid JSON Schema: " + "; ".join(errors))
    return schema


# A step's `output_schema` field: refused (422 at its path) unless it is a valid JSON Schema.
OutputSchema = Annotated[dict[str, Any] | None, AfterValidator(usable_schema)]


class OutputContract(BaseModel):
    """A step's `output_schema` and `checks` (both optional)."""

    model_config = ConfigDict(extra="ignore")

    output_schema: OutputSchema = None
    checks: list[OutputCheck] = Field(default_factory=list, max_length=50)

    @property
    def declared(self) -> bool:
        return self.output_schema is not None or bool(self.checks)
