"""Re-publishing an event store: rebuilds topics after the loss of a broker or a cluster."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.codec import encode, kafka_headers, kafka_key
from sous_events.kafka import KafkaConfig, ensure_topics, make_producer
from sous_events.registry import spec_for
from sous_events.store import EventStore


async def republish_event_store(
    sessions: async_sessionmaker[AsyncSession], kafka: KafkaConfig, *, batch: int = 500
) -> int:
    """Send every stored event again, in commit order; consumers' inboxes drop what they already applied."""
    await ensure_topics(kafka)
    producer = make_producer(kafka)
    await producer.start()
    sent = 0
    try:
        futures = []
        async for envelope in EventStore().replay(sessions):
            spec = spec_for(envelope.event_type)
            if spec is None:
                continue
            futures.append(
                await producer.send(
                    spec.topic,
                    value=encode(envelope),
                    key=kafka_key(envelope),
                    headers=kafka_headers(envelope),
                )
            )
            if len(futures) >= batch:
                await asyncio.wait_for(asyncio.gather(*futures), kafka.send_timeout_s)
                sent += len(futures)
                futures = []
        await asyncio.wait_for(asyncio.gather(*futures), kafka.send_timeout_s)
        sent += len(futures)
    finally:
        await producer.stop()
    return sent
