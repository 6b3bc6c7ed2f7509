from __future__ import annotations

import pytest

from sous_gateway.limits import TokenBucketLimiter
from sous_gateway.scopes import ALL_SCOPES, MEMBER_SCOPES, scopes_for_user
from sous_service.errors import ApiError

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills():
    clock = Clock()
    limiter = TokenBucketLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [None, None, None]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(1.0)
    assert limiter.acquire("b") is None  # per principal
    clock.now += 1.0
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is not None


def test_check_raises_429_with_retry_after():
    limiter = TokenBucketLimiter(per_minute=6, burst=1, clock=Clock())
    limiter.check("a")
    with pytest.raises(ApiError) as caught:
        limiter.check("a")
    assert caught.value.status_code == 429 and caught.value.code == "rate_limited"
    assert caught.value.headers["Retry-After"] == "10"


def test_idle_buckets_are_evicted_when_the_table_is_full():
    clock = Clock()
    limiter = TokenBucketLimiter(per_minute=60, burst=2, clock=clock, max_principals=3)
    for name in "abc":
        limiter.acquire(name)
    clock.now += 10
    limiter.acquire("d")
    assert set(limiter._buckets) == {"d"}


def test_user_scopes_from_roles_and_scope_claim():
    assert scopes_for_user((), None) == MEMBER_SCOPES
    assert "keys:admin" in scopes_for_user(("admin",), None)
    assert "marketplace:moderate" in scopes_for_user(("moderator",), None)
    assert set(scopes_for_user(("admin", "moderator"), None)) == set(ALL_SCOPES)
    assert scopes_for_user(("admin",), ("recipes:read", "keys:admin", "bogus")) == ("recipes:read", "keys:admin")
    assert scopes_for_user((), ("keys:admin",)) == ()  # a claim narrows, never widens
