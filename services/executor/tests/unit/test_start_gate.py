"""Unit tests: starts of one workspace take turns in memory; other workspaces do not wait for them."""

from __future__ import annotations

import asyncio

import pytest

from sous_executor.start_gate import StartGate

pytestmark = pytest.mark.unit


async def test_starts_of_one_workspace_take_turns() -> None:
    gate = StartGate(10)
    inside = 0
    most_inside = 0

    async def start() -> None:
        nonlocal inside, most_inside
        async with gate.turn("w1"):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0)  # another start gets the chance to enter, and must not
            inside -= 1

    await asyncio.gather(*(start() for _ in range(20)))
    assert most_inside == 1


async def test_another_workspace_does_not_wait_for_a_busy_one() -> None:
    gate = StartGate(10)
    release = asyncio.Event()

    async def long_start() -> None:
        async with gate.turn("busy"):
            await release.wait()

    holder = asyncio.create_task(long_start())
    while gate.waiting("busy") == 0:
        await asyncio.sleep(0)
    async with gate.turn("other"):
        assert gate.waiting("busy") == 1
    release.set()
    await holder


async def test_a_workspace_nobody_waits_for_is_forgotten() -> None:
    gate = StartGate(10)
    async with gate.turn("w1"):
        assert gate.waiting("w1") == 1
    assert gate.waiting("w1") == 0
    assert not gate._locks


async def test_a_failed_start_gives_its_turn_to_the_next() -> None:
    gate = StartGate(10)
    with pytest.raises(RuntimeError):
        async with gate.turn("w1"):
            raise RuntimeError("refused")
    async with asyncio.timeout(5):
        async with gate.turn("w1"):
            pass


async def test_starts_across_workspaces_hold_no_more_than_their_slots() -> None:
    gate = StartGate(2)
    inside = 0
    most_inside = 0

    async def start(workspace_id: str) -> None:
        nonlocal inside, most_inside
        async with gate.turn(workspace_id):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(start(f"w{i}") for i in range(10)))
    assert most_inside == 2
