"""W3C trace context for events: the current span's `traceparent`, and the context a `traceparent` names.

Only the OpenTelemetry API is used here; with no SDK configured every span is a no-op and
`current_traceparent()` is "" (nothing is written into envelopes, nothing is allocated per event).
"""

from __future__ import annotations

import re

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def tracer(name: str = "sous") -> trace.Tracer:
    # Resolved per call through the global provider, so a provider installed later (or by a test) applies.
    return trace.get_tracer(name)


def format_traceparent(context: SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def current_traceparent() -> str:
    """The `traceparent` of the current span, or "" when there is none (tracing off, or outside a span)."""
    context = trace.get_current_span().get_span_context()
    return format_traceparent(context) if context.is_valid else ""


def recorded_traceparent() -> str:
    """The `traceparent` of the current span only if this process records it ("" when tracing is off: the
    API then passes a remote parent through as the current span, which is not a span of ours)."""
    span = trace.get_current_span()
    return format_traceparent(span.get_span_context()) if span.is_recording() else ""


def span_context_of(traceparent: str | None) -> SpanContext | None:
    match = _TRACEPARENT.match((traceparent or "").strip().lower())
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(int(match.group(3), 16)))


def parent_context(traceparent: str | None) -> Context | None:
    """A context whose current span is the remote one `traceparent` names (None if it is empty or invalid:
    a span started with context=None continues the current context, else starts a new trace)."""
    remote = span_context_of(traceparent)
    return trace.set_span_in_context(NonRecordingSpan(remote)) if remote is not None else None
