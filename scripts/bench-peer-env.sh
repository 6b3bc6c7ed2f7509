#!/usr/bin/env bash
# The peer benchmark's environment: DBOS and the openai client in a virtualenv of their own, so DBOS is never
# installed next to (or imported by) the services. Pinned; created once, reused after.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=.sous/bench-peer/venv
DBOS_VERSION=3.4.0
OPENAI_VERSION=3.57.0
stamp="$VENV/.installed-$DBOS_VERSION-$OPENAI_VERSION"
if [[ -f $stamp ]]; then
    exit 0
fi
mkdir -p "$(dirname "$VENV")"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "dbos==$DBOS_VERSION" "openai==$OPENAI_VERSION"
touch "$stamp"
