"""OpenTelemetry tracing, configured by the standard `OTEL_*` variables.

`OTEL_TRACES_EXPORTER` lists exporters: `none` (the default: no SDK is installed, every span is the API's
no-op and costs next to nothing), `console` (spans printed as JSON on stdout, for development), `otlp`
(OTLP over HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; needs the
`otlp` extra, `opentelemetry-exporter-otlp-proto-http`: SOUS_EXTRAS="otlp" when building the image). `OTEL_SERVICE_NAME` defaults to
`sous-<service>`; `SOUS_TRACES_FILE` sends the console exporter's spans to a file, one JSON object a
line (`{service}` in the path is replaced by the service's name); `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_SDK_DISABLED` are
honoured by the SDK. Propagation is W3C trace context (`traceparent`) over HTTP and in event envelopes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from sous_events.tracing import current_traceparent, parent_context, recorded_traceparent, tracer

__all__ = [
    "client_span",
    "configure_tracing",
    "current_traceparent",
    "parent_context",
    "recorded_traceparent",
    "span_ids",
    "tracer",
]

logger = logging.getLogger("sous.tracing")


def exporters_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "none").split(",")]
    return [n for n in names if n and n != "none"]


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Install the SDK's tracer provider with the configured exporters; False (nothing installed) when off."""
    env = os.environ if environ is None else environ
    names = exporters_from_env(env)
    if not names:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: f"sous-{service}"}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in names:
        exporter: SpanExporter
        if name == "console":
            exporter = _console_exporter(service, env)
        elif name == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                logger.warning("OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http; not exporting")
                continue
            exporter = OTLPSpanExporter()
        else:
            logger.warning("unknown OTEL_TRACES_EXPORTER %r ignored (use otlp, console or none)", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    logger.info("tracing on: exporters %s", ", ".join(names))
    return True


def _console_exporter(service: str, env: Mapping[str, str]) -> Any:
    """Spans as JSON on stdout; with SOUS_TRACES_FILE (`{service}` is replaced by the service's name), one
    JSON object per line appended to that file instead (for tools and tests that read them back)."""
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    path = env.get("SOUS_TRACES_FILE", "")
    if not path:
        return ConsoleSpanExporter()
    out = open(path.replace("{service}", service), "a", buffering=1)  # noqa: SIM115 (kept open for the process)
    return ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")


def span_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span as hex, or ("", "") when there is none."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def fail(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:300]))


@contextlib.contextmanager
def client_span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A CLIENT span (a model call, a tool call) under the current span; errors mark it failed."""
    with tracer("sous").start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=dict(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            fail(span, exc)
            raise
