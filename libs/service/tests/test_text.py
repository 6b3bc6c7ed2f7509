"""Text hygiene: NUL and lone surrogates go, everything else stays."""

from __future__ import annotations

import json

import pytest

from sous_service.text import clean_json, clean_text, has_refused

pytestmark = pytest.mark.unit


def test_nul_and_lone_surrogates_are_removed() -> None:
    assert clean_text("a\x00b\ud800c\udfffd") == "abcd"
    assert not has_refused(clean_text("\x00\ud83d"))


def test_other_text_is_kept() -> None:
    text = "tab\tnew\nline é 漢字 😀 \x01\x1f"
    assert clean_text(text) == text


def test_nested_values_and_keys_are_cleaned() -> None:
    raw = json.loads('{"k\\u0000": ["x\\u0000y", {"z": "\\ud800ok"}], "n": 1, "b": true, "none": null}')
    assert clean_json(raw) == {"k": ["xy", {"z": "ok"}], "n": 1, "b": True, "none": None}


def test_clean_values_come_back_unchanged() -> None:
    value = {"a": ["b", {"c": "d"}], "e": 2}
    assert clean_json(value) is value


async def test_json_bodies_with_nul_are_refused_with_the_field_path() -> None:
    import httpx
    from fastapi import FastAPI

    from sous_service.web import create_service_app

    app: FastAPI = create_service_app(
        title="t", description="d", internal_secret="s", context_max_age_s=60, service_name="t"
    )

    @app.post("/echo")
    async def echo(body: dict[str, object]) -> dict[str, object]:
        return body

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
        bad = await client.post(
            "/echo", content='{"input_data": {"k": ["ok", "a\\u0000b"]}}', headers={"content-type": "application/json"}
        )
        good = await client.post(
            "/echo", content='{"k": "emoji \\ud83d\\ude00 fine"}', headers={"content-type": "application/json"}
        )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "input_data.k.1"
    assert bad.json()["code"] == "validation_error"
    assert good.status_code == 200 and good.json() == {"k": "emoji 😀 fine"}
