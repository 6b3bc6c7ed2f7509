from __future__ import annotations

import pytest

from sous_gateway.client_address import ClientAddresses
from sous_gateway.routing.path_guard import check_path
from sous_gateway.streams import StreamCaps, StreamLedger
from sous_service.errors import ApiError

pytestmark = pytest.mark.unit


def _scope(peer: str, *forwarded: str) -> dict[str, object]:
    return {"client": (peer, 5000), "headers": [(b"x-forwarded-for", f.encode()) for f in forwarded]}


def test_forwarded_for_is_believed_only_from_trusted_proxies():
    none = ClientAddresses([])
    assert none.resolve(_scope("10.0.0.5", "1.2.3.4")) == "10.0.0.5"
    proxies = ClientAddresses(["10.0.0.0/24", "192.0.2.1"])
    assert proxies.resolve(_scope("10.0.0.5", "1.2.3.4")) == "1.2.3.4"
    # A client writing its own header gets only its rightmost untrusted hop believed.
    assert proxies.resolve(_scope("10.0.0.5", "6.6.6.6, 1.2.3.4, 192.0.2.1")) == "1.2.3.4"
    assert proxies.resolve(_scope("10.0.0.5", "6.6.6.6", "1.2.3.4")) == "1.2.3.4"
    assert proxies.resolve(_scope("8.8.8.8", "1.2.3.4")) == "8.8.8.8"  # an untrusted peer
    assert proxies.resolve(_scope("10.0.0.5", "garbage, 1.2.3.4")) == "1.2.3.4"
    assert proxies.resolve(_scope("10.0.0.5", "1.2.3.4, garbage")) == "10.0.0.5"
    assert proxies.resolve(_scope("10.0.0.5")) == "10.0.0.5"
    assert proxies.peer_is_trusted(_scope("10.0.0.9")) and not proxies.peer_is_trusted(_scope("10.0.1.9"))


@pytest.mark.parametrize(
    "raw",
    ["/api/a/..", "/api/a/./b", "/api/a/%2e%2E", "/api/a/%252e%252e/b", "/api/a%2fb", "/api/a%5Cb", "/api/a%252fb"],
)
def test_paths_that_could_be_read_two_ways_are_refused(raw: str):
    from urllib.parse import unquote

    with pytest.raises(ApiError) as caught:
        check_path(raw.encode(), unquote(raw))
    assert (caught.value.status_code, caught.value.code) == (400, "invalid_path")


def test_ordinary_paths_pass():
    for raw in ("/api/workflow-recipes/a.b/executions/e..1", "/api/agents/%7Eme", "/api/x/..."):
        check_path(raw.encode(), raw)


def test_the_stream_ledger_caps_and_releases():
    ledger = StreamLedger(StreamCaps(per_caller=2, per_workspace=3, total=4, retry_after_s=7))
    a1, a2 = ledger.admit("alice", "w1"), ledger.admit("alice", "w1")
    with pytest.raises(ApiError) as caught:
        ledger.admit("alice", "w1")
    assert (caught.value.status_code, caught.value.headers["Retry-After"]) == (429, "7")
    ledger.admit("bob", "w1")
    with pytest.raises(ApiError):
        ledger.admit("carol", "w1")  # the workspace is full
    ledger.admit("dave", "w2")
    with pytest.raises(ApiError):
        ledger.admit("erin", "w3")  # the gateway is full
    a1.release()
    a1.release()  # idempotent
    assert ledger.count(caller="alice") == 1 and ledger.count(workspace="w1") == 2 and ledger.count() == 3
    ledger.admit("carol", "w1")
    a2.release()
    assert ledger.count(caller="alice") == 0
