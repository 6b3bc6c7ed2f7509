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
    monkeypatch.delenv("SOUS_KAFKA_SESSION_TIMEOUT_MS", raising=False)


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


def test_the_stack_shortens_the_session_only_on_an_embedded_broker_it_started() -> None:
    assert broker_defaults("embedded", started=True) == {
        "SOUS_KAFKA_SESSION_TIMEOUT_MS": str(EMBEDDED_SESSION_TIMEOUT_MS)
    }
    assert broker_defaults("embedded", started=False) == {}
    assert broker_defaults("kafka", started=True) == {}
