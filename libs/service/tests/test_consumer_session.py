"""The consumers' session timeout is a setting, carried to every consumer the service makes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sous_events.kafka import make_consumer
from sous_local.provisioning import EMBEDDED_SESSION_TIMEOUT_MS, broker_defaults
from sous_service.config import ServiceSettings
from sous_service.runtime import kafka_config


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOUS_KAFKA_SESSION_TIMEOUT_MS", "SOUS_KAFKA_FETCH_MIN_BYTES", "SOUS_KAFKA_FETCH_MAX_WAIT_MS"):
        monkeypatch.delenv(name, raising=False)


async def test_the_session_timeout_reaches_the_consumer_with_a_heartbeat_inside_it() -> None:
    settings = ServiceSettings(kafka_session_timeout_ms=6_000)
    consumer = make_consumer(kafka_config(settings), "group")
    assert consumer._coordinator is None  # not started: nothing connects
    assert consumer._session_timeout_ms == 6_000
    assert consumer._heartbeat_interval_ms < 6_000 // 2


def test_the_default_is_ten_seconds_and_the_environment_can_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().kafka_session_timeout_ms == 10_000
    monkeypatch.setenv("SOUS_KAFKA_SESSION_TIMEOUT_MS", "4000")
    assert kafka_config(ServiceSettings()).session_timeout_ms == 4_000


def test_a_session_shorter_than_a_few_heartbeats_is_refused() -> None:
    with pytest.raises(ValidationError) as raised:
        ServiceSettings(kafka_session_timeout_ms=500)
    assert raised.value.errors()[0]["loc"] == ("kafka_session_timeout_ms",)


async def test_fetches_wait_for_a_batch_by_default_and_the_settings_reach_the_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer = make_consumer(kafka_config(ServiceSettings()), "group")
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (64 * 1024, 100)
    monkeypatch.setenv("SOUS_KAFKA_FETCH_MIN_BYTES", "1")
    monkeypatch.setenv("SOUS_KAFKA_FETCH_MAX_WAIT_MS", "500")
    consumer = make_consumer(kafka_config(ServiceSettings()), "group")
    assert (consumer._fetch_min_bytes, consumer._fetch_max_wait_ms) == (1, 500)


def test_the_stack_shortens_the_session_only_on_an_embedded_broker_it_started() -> None:
    assert broker_defaults("embedded", started=True) == {
        "SOUS_KAFKA_SESSION_TIMEOUT_MS": str(EMBEDDED_SESSION_TIMEOUT_MS),
        "SOUS_KAFKA_FETCH_MIN_BYTES": "1",
        "SOUS_KAFKA_FETCH_MAX_WAIT_MS": "500",
    }
    assert broker_defaults("embedded", started=False) == {}
    assert broker_defaults("kafka", started=True) == {}
