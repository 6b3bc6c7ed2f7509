"""Creator trust: a creator with enough approved listings publishes without moderation."""

from __future__ import annotations


def is_trusted(approved_listings: int, threshold: int) -> bool:
    """Trusted once the creator's approved listings reach the threshold (5 by default)."""
    return approved_listings >= threshold
