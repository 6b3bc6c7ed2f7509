"""Metrics (Prometheus), tracing (OpenTelemetry) and access logs shared by every service and the gateway."""
