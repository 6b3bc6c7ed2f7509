#!/usr/bin/env bash
# The Apache Kafka lane (one KRaft node on the JDK):
#   scripts/kafka-lane.sh fetch                          download the broker jars into the cache
#   scripts/kafka-lane.sh run --data-dir D [--port P]    run in the foreground until SIGTERM/SIGINT
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$root/.venv/bin/python" -m sous_local.kafka_lane "$@"
