"""The quality gate: a listing is approved only when its source recipe scores well over enough assessed runs.

The score is the recipe's rolling quality score (docs/quality-model.md) as the quality service published it
last; the runs are the executions of the recipe the quality service assessed. A listing approved under the
gate whose rolling score later falls below the minimum is flagged for moderators and is no longer featured;
it is featured again once the gate holds again.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class QualityStanding:
    """What the marketplace knows of a recipe's quality: rolling score, assessed runs, recent rolling scores."""

    score: float | None = None
    assessed_runs: int = 0
    trend: tuple[float, ...] = field(default_factory=tuple)

    def fresher(self, other: QualityStanding) -> QualityStanding:
        """The standing that has seen more assessments (a replica may lag the quality service)."""
        return other if other.assessed_runs > self.assessed_runs else self


@dataclass(frozen=True)
class GateVerdict:
    met: bool
    reason: str | None = None


@dataclass(frozen=True)
class QualityGate:
    """`min_score` in [0, 1] over at least `min_runs` assessed runs; `min_runs = 0` lets unassessed recipes in."""

    min_score: float
    min_runs: int

    def verdict(self, standing: QualityStanding) -> GateVerdict:
        if standing.assessed_runs < self.min_runs:
            return GateVerdict(
                False,
                f"the recipe has {standing.assessed_runs} assessed run(s); approval needs at least {self.min_runs}",
            )
        if standing.score is not None and standing.score < self.min_score:
            return GateVerdict(False, self.below_reason(standing))
        return GateVerdict(True)

    def below_reason(self, standing: QualityStanding) -> str:
        score = standing.score if standing.score is not None else 0.0
        return (
            f"the recipe's rolling quality score {score:.2f} over {standing.assessed_runs} assessed run(s) "
            f"is below the minimum {self.min_score:.2f}"
        )

    def falls_below(self, standing: QualityStanding) -> bool:
        """An approved listing is flagged once its rolling score is under the minimum."""
        return standing.score is not None and standing.score < self.min_score

    def as_dict(self, standing: QualityStanding) -> dict[str, object]:
        verdict = self.verdict(standing)
        return {"min_score": self.min_score, "min_runs": self.min_runs, "met": verdict.met, "reason": verdict.reason}
