"""Request field aliases: each origin spelling Sous accepts, mapped explicitly to Sous's own field.

Only the aliases listed here are translated; any other unknown field reaches the service unchanged and is
refused there with 422. An alias given together with its Sous spelling must agree.
"""

from __future__ import annotations

import json
from typing import Any

from sous_service.errors import FieldError, InputInvalid

# (where in the body, origin spelling, Sous spelling)
EXECUTION_CONFIG_ALIASES: tuple[tuple[str, str], ...] = (("per_step_timeout", "timeout_per_step"),)
RECIPE_WRITES = (("POST", "/api/workflow-recipes"), ("PUT", "/api/workflow-recipes/{id}"))


def _rename(container: dict[str, Any], alias: str, canonical: str, path: str) -> None:
    if alias not in container:
        return
    value = container.pop(alias)
    if canonical in container and container[canonical] != value:
        raise InputInvalid(
            [
                FieldError(
                    field=f"{path}.{alias}",
                    message=f"'{alias}' is an alias of '{canonical}' and disagrees with it",
                    type="value_error",
                )
            ]
        )
    container[canonical] = value


def recipe_body(body: bytes) -> bytes:
    """A recipe create/update body with the origin's execution_config spellings in Sous's."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        return body  # the service answers 422 for a body that is not JSON
    if not isinstance(data, dict) or not isinstance(data.get("execution_config"), dict):
        return body
    config: dict[str, Any] = data["execution_config"]
    for alias, canonical in EXECUTION_CONFIG_ALIASES:
        _rename(config, alias, canonical, "execution_config")
    return json.dumps(data).encode()


def adapt(method: str, pattern: str, body: bytes) -> bytes:
    if (method, pattern) in RECIPE_WRITES:
        return recipe_body(body)
    return body
