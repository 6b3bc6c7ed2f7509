"""The Idempotency-Key header of the start endpoints (a recipe's execute, a workflow's)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="A key the client makes per intended start (a UUID, say) and repeats on retries: for 24 h a "
        "request of the workspace with the same key, target and input_data starts nothing and answers with what "
        "the first one started (`replayed: true`, header `Idempotent-Replayed: true`). The same key with another "
        "target or other inputs is refused (422).",
    ),
]


def answered(response: Response, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer, with the header that tells a repeat from the request that started it."""
    if answer.get("replayed"):
        response.headers["Idempotent-Replayed"] = "true"
    return answer
