"""A recipe's learning_data is the fold of its LearningRecorded events, kept where it is read.

From v3 on a LearningRecorded carries its run's analysis only (patterns, suggestions, performance_metrics,
analyzed_at); the recipe's `learning_data` (docs/quality-model.md) is what the events add up to: each one
appends a summary of its analysis to `analyses` (the last `MAX_ANALYSES` kept) and sets the `latest_*`
fields and `last_analyzed_at`. A v2 event carried that result whole, and it was this same fold of the events
before it.

The services that keep a recipe's learning_data in a row (quality's `recipe_quality`, the catalog's
`recipes`) fold it there, in one statement, with `folded`: the stored document is neither read into the
process nor written out of it, whatever its size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_ANALYSES = 50

# The last MAX_ANALYSES elements of an array (lax mode: all of them when there are fewer).
_LAST_ANALYSES = f"$[last - {MAX_ANALYSES - 1} to last]"


def folded(learning_data: str, first: int) -> str:
    """The SQL expression of the jsonb `learning_data` after one LearningRecorded.

    The event's fields are the parameters `$first` .. `$first + 4`: execution_id, analyzed_at (text), then
    the JSON texts of patterns, suggestions and performance_metrics as the event wrote them.
    """
    execution_id, analyzed_at, patterns, suggestions, performance = (f"${first + i}" for i in range(5))
    summary = (
        f"jsonb_build_object('execution_id', {execution_id}::text, 'analyzed_at', {analyzed_at}::text, "
        f"'pattern_count', jsonb_array_length({patterns}::jsonb), "
        f"'suggestion_count', jsonb_array_length({suggestions}::jsonb), "
        f"'performance_metrics', {performance}::jsonb)"
    )
    analyses = f"COALESCE(({learning_data}) -> 'analyses', '[]'::jsonb) || jsonb_build_array({summary})"
    return (
        f"jsonb_build_object('analyses', jsonb_path_query_array({analyses}, '{_LAST_ANALYSES}'), "
        f"'latest_patterns', {patterns}::jsonb, 'latest_suggestions', {suggestions}::jsonb, "
        f"'latest_performance', {performance}::jsonb, 'last_analyzed_at', {analyzed_at}::text)"
    )


def fold_in_memory(previous: Mapping[str, Any] | None, run: Mapping[str, Any]) -> dict[str, Any]:
    """The same fold over documents in hand (`run`: a LearningRecorded payload as JSON data): what `folded`
    computes in PostgreSQL, and what a v2 event carried."""
    summary = {
        "execution_id": run["execution_id"],
        "analyzed_at": run["analyzed_at"],
        "pattern_count": len(run["patterns"]),
        "suggestion_count": len(run["suggestions"]),
        "performance_metrics": run["performance_metrics"],
    }
    return {
        "analyses": [*(previous or {}).get("analyses", []), summary][-MAX_ANALYSES:],
        "latest_patterns": run["patterns"],
        "latest_suggestions": run["suggestions"],
        "latest_performance": run["performance_metrics"],
        "last_analyzed_at": run["analyzed_at"],
    }
