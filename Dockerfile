# syntax=docker/dockerfile:1
# One image for every Sous process. The command picks the service and what it does:
#   docker run sous:<tag> sous_catalog serve       (or migrate | replay | rebuild)
#   docker run sous:<tag> sous_gateway serve       (or migrate)
# Built with uv from the locked workspace; runs as uid 10001 on a read-only root filesystem
# (the only writable place it needs is /tmp).
#
# Only the five services and the libraries they import are installed: the local stack (sous-local, with
# its embedded PostgreSQL and Kafka-protocol broker binaries and the `sous` CLI) stays out of the image.
# Optional extras are chosen at build time, e.g. Composio tools for the executor:
#   docker build --build-arg SOUS_EXTRAS="composio" -t sous:<tag> .

ARG PYTHON_IMAGE=python:3.11-slim
ARG UV_VERSION=0.13.9

# ---------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder
ARG UV_VERSION
# Space-separated extras of the service packages to install (e.g. "composio"); empty for none.
ARG SOUS_EXTRAS=""
# The workspace packages installed: the five services (deploy/k8s/tests/test_dockerfile.py checks it).
ARG SOUS_PACKAGES="--package sous-gateway --package sous-catalog --package sous-executor --package sous-quality --package sous-marketplace"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /app

# Third-party dependencies first: this layer is reused while only Sous' own code changes. Every workspace
# member's pyproject is needed for uv to read the lock (deploy/local's too), but only the services'
# dependency trees are installed.
COPY pyproject.toml uv.lock ./
COPY libs/events/pyproject.toml libs/events/
COPY libs/service/pyproject.toml libs/service/
COPY deploy/local/pyproject.toml deploy/local/
COPY services/recipe-catalog/pyproject.toml services/recipe-catalog/
COPY services/executor/pyproject.toml services/executor/
COPY services/quality/pyproject.toml services/quality/
COPY services/marketplace/pyproject.toml services/marketplace/
COPY gateway/pyproject.toml gateway/
# SOUS_PACKAGES and the extras are word lists: split on purpose.
# hadolint ignore=SC2046,SC2086
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace $SOUS_PACKAGES \
        $(for extra in $SOUS_EXTRAS; do printf -- '--extra %s ' "$extra"; done) \
        --python /usr/local/bin/python3.11

# Then the workspace members the services import. They stay installed in place (editable): each service
# finds its Alembic migrations next to its package (services/<name>/migrations), so the tree is kept as is.
COPY libs libs
COPY services services
COPY gateway gateway
# hadolint ignore=SC2046,SC2086
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev $SOUS_PACKAGES \
        $(for extra in $SOUS_EXTRAS; do printf -- '--extra %s ' "$extra"; done) \
        --python /usr/local/bin/python3.11 \
 && /app/.venv/bin/python -m compileall -q libs services gateway \
 && rm -rf deploy

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 sous \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin sous
# Bytecode is compiled at build time; nothing is written outside /tmp at run time.
ENV PATH=/app/.venv/bin:$PATH \
    VIRTUAL_ENV=/app/.venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    SOUS_HOST=0.0.0.0
WORKDIR /app
# Owned by root and not writable by the service user.
COPY --from=builder /app /app
USER 10001:10001
EXPOSE 8000 8001 8002 8003 8004
# No HEALTHCHECK: each process listens on its own port; Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["python", "-m"]
CMD ["sous_gateway", "serve"]
