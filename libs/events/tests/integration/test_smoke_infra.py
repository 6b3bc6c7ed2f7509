import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.integration


async def test_infrastructure_answers(infra, fresh_database):
    conn = await asyncpg.connect(make_url(fresh_database).set(drivername="postgresql").render_as_string(False))
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    await admin.list_topics()
    await admin.close()
