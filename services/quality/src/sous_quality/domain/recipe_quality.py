"""The RecipeQuality aggregate: one recipe's rolling quality score and learning data.

Its stream holds QualityAssessed and LearningRecorded, one of each per finished execution. A QualityAssessed
carries the rolling score it leaves behind; a LearningRecorded carries its run's analysis only, which no
decision depends on (the recipe's learning_data is a read model folded from these events, see
sous_events.learning_fold). The `recipe_quality` row is the fold, kept at the stream's version in the
appending transaction, and the handlers decide from it as from a snapshot. An event appended from a snapshot
that is behind the stream is refused by the store (expected version).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sous_events.events import LearningRecorded, QualityAssessed
from sous_quality.domain import learning, scoring
from sous_quality.domain.errors import ExecutionNotFinished
from sous_quality.domain.record import ExecutionRecord
from sous_quality.domain.rolling import next_rolling_score

AGGREGATE = "RecipeQuality"


def stream_id(workspace_id: str, template_id: str) -> str:
    """Recipe templates are named per workspace, so the stream is too."""
    return f"{workspace_id}:{template_id}"


@dataclass(frozen=True)
class RecipeQuality:
    workspace_id: str
    template_id: str
    rolling_score: float | None = None
    assessment_count: int = 0
    version: int = 0

    @property
    def stream_id(self) -> str:
        return stream_id(self.workspace_id, self.template_id)

    def assess(self, record: ExecutionRecord) -> QualityAssessed:
        """Score a finished execution and move the rolling score; patterns come from the record itself.

        A run in which no step ran (all reused or skipped) costs nothing to repeat: it is scored but not
        counted, so replaying a run cannot move the rolling score nor pass a quality gate's run count."""
        _require_finished(record)
        result = scoring.assess(record, learning.patterns(record))
        counted = record.ran_any_step
        if counted:
            rolling = next_rolling_score(self.rolling_score, result.quality_score)
        else:
            rolling = self.rolling_score if self.rolling_score is not None else round(result.quality_score, 4)
        return QualityAssessed(
            template_id=self.template_id,
            execution_id=record.execution_id,
            quality_score=result.quality_score,
            rolling_score=rolling,
            breakdown=result.breakdown,
            grade=result.grade,
            bottlenecks=result.bottlenecks,
            counted=counted,
        )

    def learn(self, record: ExecutionRecord, analyzed_at: str) -> LearningRecorded:
        """Analyse a finished execution: the analysis alone, which the recipe's learning_data folds in."""
        _require_finished(record)
        analysis = learning.analyse(record)
        return LearningRecorded(
            template_id=self.template_id,
            execution_id=record.execution_id,
            analyzed_at=analyzed_at,
            patterns=analysis.patterns,
            suggestions=analysis.suggestions,
            performance_metrics=analysis.performance_metrics,
        )

    def applied(self, event: QualityAssessed | LearningRecorded, version: int) -> RecipeQuality:
        """The state after one of its events (live and on rebuild)."""
        if isinstance(event, QualityAssessed) and not event.counted:
            return replace(self, version=version)
        if isinstance(event, QualityAssessed):
            return replace(
                self, rolling_score=event.rolling_score, assessment_count=self.assessment_count + 1, version=version
            )
        return replace(self, version=version)


def _require_finished(record: ExecutionRecord) -> None:
    if not record.is_finished:
        raise ExecutionNotFinished(record.execution_id, record.status)
