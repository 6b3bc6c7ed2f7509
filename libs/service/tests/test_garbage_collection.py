"""A service process collects its young generation rarely and keeps what start-up made out of the collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from sous_service.cli import GC_THRESHOLDS, tune_garbage_collection

pytestmark = pytest.mark.unit


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_serving_freezes_start_up_objects_and_raises_the_thresholds(restored_gc: None) -> None:
    gc.unfreeze()
    tune_garbage_collection()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700 * 10  # far above CPython's default first threshold
    assert gc.get_freeze_count() > 0
