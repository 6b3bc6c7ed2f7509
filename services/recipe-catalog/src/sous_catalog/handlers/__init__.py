"""The catalog's use cases, one handler per command (sous_catalog.commands), run in a unit of work.

`CatalogHandlers` gathers them for the composition root; `unit_of_works` makes the catalog's units of
work (the catalog's producer name, its event store, its projection applied in each transaction).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_catalog import projections
from sous_catalog.domain.rules import RecipeRules
from sous_catalog.handlers.agents import AgentHandlers
from sous_catalog.handlers.installs import InstallHandler
from sous_catalog.handlers.recipes import RecipeHandlers
from sous_catalog.handlers.versions import VersionHandlers
from sous_events.store import EventStore
from sous_service.unit_of_work import DEFAULT_ATTEMPTS, UnitOfWorks

PRODUCER = "catalog"


@dataclass(frozen=True)
class CatalogHandlers:
    recipes: RecipeHandlers
    agents: AgentHandlers
    install: InstallHandler
    versions: VersionHandlers

    @classmethod
    def create(cls, rules: RecipeRules | None = None) -> CatalogHandlers:
        rules = rules or RecipeRules()
        recipes, agents = RecipeHandlers(rules), AgentHandlers(rules)
        return cls(
            recipes=recipes, agents=agents, install=InstallHandler(recipes, agents), versions=VersionHandlers(rules)
        )


def unit_of_works(
    sessions: async_sessionmaker[AsyncSession], store: EventStore | None = None, attempts: int = DEFAULT_ATTEMPTS
) -> UnitOfWorks:
    return UnitOfWorks(sessions, producer=PRODUCER, store=store, projector=projections.apply, attempts=attempts)
