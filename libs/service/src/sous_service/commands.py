"""Commands: what a caller asks a service to do, as an imperative, frozen, typed model.

One command, one handler: `async def handler(command: TheCommand, uow: UnitOfWork) -> Result`. The entry
point (a route, a consumer) builds the command and runs its handler through `UnitOfWorks.run` (or, inside a
consumer's transaction, on `UnitOfWorks.joined`); the handler never sees HTTP, and refuses with the
exceptions of `sous_service.domain_errors`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from sous_service.unit_of_work import CommandHandler, UnitOfWork

__all__ = ["Command", "CommandHandler", "UnitOfWork"]


class Command(BaseModel):
    """Base of every command: immutable once built, and strict about its fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
