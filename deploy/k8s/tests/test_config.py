"""The configuration the overlays give the services is accepted by every service's Settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

K8S_DIR = Path(__file__).resolve().parents[1]
SECRETS = {
    "SOUS_INTERNAL_SECRET": "x" * 48,
    "SOUS_JWT_SECRET": "y" * 48,
    "SOUS_DATABASE_URL": "postgresql+asyncpg://sous:pw@sous-db-pooler-rw:5432/sous",
    "SOUS_SECRETS_KEK": "k1:" + "z" * 40,
}


def _literals(kustomization: Path) -> dict[str, str]:
    doc: dict[str, Any] = yaml.safe_load(kustomization.read_text())
    values: dict[str, str] = {}
    for generator in doc.get("configMapGenerator", []):
        if generator["name"] == "sous-config":
            for literal in generator.get("literals", []):
                key, _, value = literal.partition("=")
                values[key] = value
    return values


def overlay_config(overlay: str) -> dict[str, str]:
    """sous-config as the overlay renders it: the base, then the overlay's components, then the overlay."""
    kustomization = K8S_DIR / "overlays" / overlay / "kustomization.yaml"
    config = _literals(K8S_DIR / "base" / "kustomization.yaml")
    for component in yaml.safe_load(kustomization.read_text()).get("components", []):
        config.update(_literals((kustomization.parent / component / "kustomization.yaml").resolve()))
    config.update(_literals(kustomization))
    return config


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_service_accepts_the_overlay_config(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from sous_catalog.config import CatalogSettings
    from sous_executor.config import ExecutorSettings
    from sous_gateway.config import GatewaySettings
    from sous_marketplace.config import MarketplaceSettings
    from sous_quality.config import QualitySettings

    config = overlay_config(overlay)
    for key in list(os.environ):
        if key.startswith("SOUS_"):
            monkeypatch.delenv(key)
    for key, value in {**config, **SECRETS}.items():
        monkeypatch.setenv(key, value)

    gateway = GatewaySettings()
    assert gateway.host == "0.0.0.0" and gateway.port == 8000
    assert gateway.upstreams["catalog"] == "http://sous-catalog:8001"
    expected = {CatalogSettings: 8001, ExecutorSettings: 8002, QualitySettings: 8003, MarketplaceSettings: 8004}
    for settings_class, port in expected.items():
        settings = settings_class()
        assert settings.port == port, settings_class
        assert settings.database_name == f"sous_{settings.service_name}"
        expected_bootstrap = (
            "sous-kafka-kafka-bootstrap:9093" if overlay == "prod" else "sous-kafka-kafka-bootstrap:9092"
        )
        assert settings.kafka_bootstrap == expected_bootstrap
    if overlay == "prod":
        # The kafka-tls component: mutual TLS with the files its patches mount.
        assert config["SOUS_KAFKA_SECURITY_PROTOCOL"] == "SSL"
        assert config["SOUS_KAFKA_SSL_CERTFILE"] == "/var/run/secrets/sous/kafka/user.crt"
        assert gateway.env == "production" and gateway.kafka_idempotence is True
        assert gateway.kafka_replication == 3 and gateway.kafka_partitions == 12


def test_production_refuses_the_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from sous_catalog.config import CatalogSettings

    for key, value in overlay_config("prod").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SOUS_INTERNAL_SECRET", raising=False)
    with pytest.raises(ValueError, match="SOUS_INTERNAL_SECRET"):
        CatalogSettings()
