"""Kafka clients over TLS with a client certificate (the kafka-tls deployment component), or plain."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sous_events import kafka as kafka_module
from sous_events.kafka import KafkaConfig, make_consumer, make_producer, security_options

pytestmark = pytest.mark.unit


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key as PEM files (standing in for the CA and the client's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sous-catalog")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "user.crt", directory / "user.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_plaintext_adds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOUS_KAFKA_SECURITY_PROTOCOL", raising=False)
    config = KafkaConfig(bootstrap="127.0.0.1:9092")
    assert config.security_protocol == "PLAINTEXT"
    assert security_options(config) == {}


def test_ssl_builds_a_verifying_context_from_the_files(tmp_path: Path) -> None:
    cert, key = write_certificate(tmp_path)
    config = KafkaConfig(
        bootstrap="kafka:9093",
        security_protocol="SSL",
        ssl_cafile=str(cert),
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    options = security_options(config)
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_settings_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = write_certificate(tmp_path)
    monkeypatch.setenv("SOUS_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("SOUS_KAFKA_SSL_CAFILE", str(cert))
    monkeypatch.setenv("SOUS_KAFKA_SSL_CERTFILE", str(cert))
    monkeypatch.setenv("SOUS_KAFKA_SSL_KEYFILE", str(key))
    config = KafkaConfig(bootstrap="kafka:9093")
    assert (config.security_protocol, config.ssl_keyfile) == ("SSL", str(key))


def test_clients_are_made_with_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> None:
        made.append(kwargs)

    monkeypatch.setattr(kafka_module, "AIOKafkaProducer", record)
    monkeypatch.setattr(kafka_module, "AIOKafkaConsumer", record)
    cert, key = write_certificate(tmp_path)
    config = KafkaConfig(
        bootstrap="kafka:9093",
        security_protocol="SSL",
        ssl_cafile=str(cert),
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    make_producer(config)
    make_consumer(config, "catalog")
    assert [m["security_protocol"] for m in made] == ["SSL", "SSL"]
    assert all(isinstance(m["ssl_context"], ssl.SSLContext) for m in made)


def test_unknown_protocols_and_missing_files_fail_when_a_client_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SASL_SSL"):
        security_options(KafkaConfig(bootstrap="k:9093", security_protocol="SASL_SSL"))
    missing = KafkaConfig(
        bootstrap="k:9093", security_protocol="SSL", ssl_cafile=str(tmp_path / "nope.crt"), ssl_certfile=None
    )
    with pytest.raises(FileNotFoundError):
        security_options(missing)
