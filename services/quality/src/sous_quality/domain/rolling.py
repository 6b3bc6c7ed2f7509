"""The recipe's rolling quality score: an exponential moving average of run scores (alpha 0.3)."""

from __future__ import annotations

ALPHA = 0.3


def next_rolling_score(previous: float | None, score: float) -> float:
    """The first assessment sets the score; each next one moves it by alpha. 4 decimals."""
    if previous is None:
        return round(score, 4)
    return round(ALPHA * score + (1 - ALPHA) * previous, 4)
