"""Execution inputs: defaults from the recipe's `inputs`, required keys and types checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sous_service.domain_errors import FieldError, InputInvalid

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "str": (str,),
    "text": (str,),
    "number": (int, float),
    "float": (int, float),
    "integer": (int,),
    "int": (int,),
    "boolean": (bool,),
    "bool": (bool,),
    "object": (dict,),
    "dict": (dict,),
    "array": (list,),
    "list": (list,),
}


def _matches(value: Any, type_name: str) -> bool:
    allowed = _TYPES.get(type_name.lower())
    if allowed is None or value is None:
        return True
    if isinstance(value, bool) and bool not in allowed:
        return False
    return isinstance(value, allowed)


_TEXT_TYPES = ("", "string", "str", "text")


def resolve_inputs(
    declared: Mapping[str, Any] | None, given: Mapping[str, Any] | None, *, missing_text_as_empty: bool = False
) -> dict[str, Any]:
    """The input data a run starts with; raises InputInvalid (422) with `input_data.<key>` paths.

    With `missing_text_as_empty` (recipe runs, as on the platform Sous replaces), a required text input
    that is absent and has no default runs as `''`; a required input of any other type is still refused.
    """
    data = dict(given or {})
    errors: list[FieldError] = []
    for name, spec_raw in (declared or {}).items():
        spec = spec_raw if isinstance(spec_raw, Mapping) else {}
        if name not in data:
            if spec.get("default") is not None:
                data[name] = spec["default"]
            elif spec.get("required") and missing_text_as_empty and str(spec.get("type") or "").lower() in _TEXT_TYPES:
                data[name] = ""
            elif spec.get("required"):
                errors.append(FieldError(field=f"input_data.{name}", message="required input missing", type="missing"))
                continue
            else:
                continue
        type_name = str(spec.get("type") or "")
        if type_name and not _matches(data[name], type_name):
            errors.append(
                FieldError(field=f"input_data.{name}", message=f"expected type {type_name}", type="type_error")
            )
    if errors:
        raise InputInvalid(errors)
    return data
