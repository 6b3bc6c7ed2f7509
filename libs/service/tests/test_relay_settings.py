"""The outbox relay's settings reach the relay the service makes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sous_service.config import ServiceSettings
from sous_service.runtime import kafka_config, outbox_relay


@pytest.fixture(autouse=True)
def no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOUS_OUTBOX_LINGER_MS", "SOUS_OUTBOX_KEEP_SENT_S"):
        monkeypatch.delenv(name, raising=False)


def _relay(settings: ServiceSettings):  # type: ignore[no-untyped-def]
    return outbox_relay(settings, kafka_config(settings))


def test_the_relay_lingers_25_ms_by_default_and_the_environment_can_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _relay(ServiceSettings()).linger_s == pytest.approx(0.025)
    monkeypatch.setenv("SOUS_OUTBOX_LINGER_MS", "0")
    assert _relay(ServiceSettings()).linger_s == 0


def test_the_delivery_log_setting_reaches_the_relay() -> None:
    assert _relay(ServiceSettings()).keep_sent_s == 0
    assert _relay(ServiceSettings(outbox_keep_sent_s=60)).keep_sent_s == 60


@pytest.mark.parametrize("value", [-1, 1001])
def test_a_linger_outside_zero_to_a_second_is_refused(value: int) -> None:
    with pytest.raises(ValidationError) as raised:
        ServiceSettings(outbox_linger_ms=value)
    assert raised.value.errors()[0]["loc"] == ("outbox_linger_ms",)
