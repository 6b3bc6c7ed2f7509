"""Catalog events: recipes and agents. Payloads carry full snapshots (event-carried state transfer)."""

from __future__ import annotations

from sous_events.contracts import AgentSnapshot, PromotionReplay, PromotionReport, RecipeSnapshot
from sous_events.envelope import EventPayload


class RecipeCreated(EventPayload):
    recipe: RecipeSnapshot


class RecipeUpdated(EventPayload):
    recipe: RecipeSnapshot
    changed_fields: list[str]


class RecipeDeleted(EventPayload):
    # The catalog's internal id (the aggregate id); `template_id` is the name the recipe had in its workspace.
    recipe_id: str
    template_id: str = ""


class RecipeVersionProposed(EventPayload):
    """A version of the recipe that is not current until promoted: `recipe` is its full snapshot, with
    `revision` = this event's stream version (what-if replays name it)."""

    recipe: RecipeSnapshot
    changed_fields: list[str]
    base_revision: int


class RecipePromotionStarted(EventPayload):
    """The replays a promotion of a proposed version started."""

    recipe_id: str
    template_id: str
    revision: int
    replays: list[PromotionReplay] = []


class RecipeVersionPromoted(EventPayload):
    """The proposed version passed its replays and became current (the RecipeUpdated that follows)."""

    recipe_id: str
    template_id: str
    revision: int
    report: PromotionReport


class RecipePromotionRefused(EventPayload):
    """The proposed version's replays were worse on quality or over the cost ceiling: it stays proposed."""

    recipe_id: str
    template_id: str
    revision: int
    reasons: list[str]
    report: PromotionReport


class AgentRegistered(EventPayload):
    agent: AgentSnapshot


class AgentUpdated(EventPayload):
    agent: AgentSnapshot
    changed_fields: list[str] = []


class AgentRemoved(EventPayload):
    agent_id: str
