"""The RecipeQuality aggregate: one recipe's rolling quality score and learning data.

Its stream holds QualityAssessed and LearningRecorded, one of each per finished execution. Each event
carries the state it leaves behind (the new rolling score, the whole learning_data), so the state is a fold
of the stream that needs only its latest events; the `recipe_quality` row is that fold, kept at the
stream's version in the appending transaction, and the handlers decide from it as from a snapshot. An
event appended from a snapshot that is behind the stream is refused by the store (expected version).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sous_events.contracts import LearningData
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
    learning_data: LearningData = field(default_factory=LearningData)
    version: int = 0

    @property
    def stream_id(self) -> str:
        return stream_id(self.workspace_id, self.template_id)

    def assess(self, record: ExecutionRecord) -> QualityAssessed:
        """Score a finished execution and move the rolling score; patterns come from the record itself."""
        _require_finished(record)
        result = scoring.assess(record, learning.patterns(record))
        return QualityAssessed(
            template_id=self.template_id,
            execution_id=record.execution_id,
            quality_score=result.quality_score,
            rolling_score=next_rolling_score(self.rolling_score, result.quality_score),
            breakdown=result.breakdown,
            grade=result.grade,
            bottlenecks=result.bottlenecks,
        )

    def learn(self, record: ExecutionRecord, analyzed_at: str) -> LearningRecorded:
        """Analyse a finished execution and fold the analysis into the recipe's learning_data."""
        _require_finished(record)
        analysis = learning.analyse(record)
        return LearningRecorded(
            template_id=self.template_id,
            execution_id=record.execution_id,
            patterns=analysis.patterns,
            suggestions=analysis.suggestions,
            performance_metrics=analysis.performance_metrics,
            learning_data=learning.updated_learning_data(
                self.learning_data, execution_id=record.execution_id, analyzed_at=analyzed_at, analysis=analysis
            ),
        )

    def applied(self, event: QualityAssessed | LearningRecorded, version: int) -> RecipeQuality:
        """The state after one of its events (live and on rebuild)."""
        if isinstance(event, QualityAssessed):
            return replace(
                self, rolling_score=event.rolling_score, assessment_count=self.assessment_count + 1, version=version
            )
        return replace(self, learning_data=event.learning_data, version=version)


def _require_finished(record: ExecutionRecord) -> None:
    if not record.is_finished:
        raise ExecutionNotFinished(record.execution_id, record.status)
