"""OpenTelemetry tracing, on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Without the endpoint (or without the SDK installed) every helper here is a no-op: the
global tracer provider stays the API's no-op one. The standard ``OTEL_*`` variables
(headers, sampler, resource attributes) are read by the SDK and exporter themselves.

Spans: ``http <method> <route>`` per request (``TracingMiddleware``), and ``span(name,
**attributes)`` for commands, processor steps and external calls. Each span carries the
request's correlation id (``lrm.correlation_id``), the same id the command context puts
into event metadata and CloudEvents, so a trace and an event history can be joined.
"""

from __future__ import annotations

import os
import functools
import re
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace

TRACER_NAME = "lablet-resource-manager"
_configured = False


def configure_tracing(service_name: str, *, roles: str = "all", exporter: Any = None) -> bool:
    """Install an SDK tracer provider exporting over OTLP/HTTP (or to ``exporter``, for tests).

    Returns True when tracing is on. Idempotent: the first successful call wins.
    """
    global _configured
    if _configured:
        return True
    if exporter is None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:  # the SDK is optional: tracing stays off
        return False
    # The standard OTEL_SERVICE_NAME wins over LRM_OTEL_SERVICE_NAME, as other services expect.
    name = os.environ.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name, "lrm.roles": roles}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


@contextmanager
def span(name: str, correlation_id: str | None = None, **attributes: Any) -> Iterator[trace.Span]:
    """A span for a command, a processor step or an external call (no-op when tracing is off)."""
    attrs = {k: v for k, v in attributes.items() if v is not None}
    if correlation_id:
        attrs["lrm.correlation_id"] = correlation_id
    with tracer().start_as_current_span(name, attributes=attrs) as current:
        yield current


def enabled() -> bool:
    return _configured


def traced(name: str, step: Callable[..., Any], **attributes: Any) -> Callable[..., Any]:
    """``step`` (sync or async) inside a span per call: processor passes and ticks."""
    if inspect.iscoroutinefunction(step):
        @functools.wraps(step)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with span(name, **attributes):
                return await step(*args, **kwargs)

        return run_async

    @functools.wraps(step)
    def run(*args: Any, **kwargs: Any) -> Any:
        with span(name, **attributes):
            return step(*args, **kwargs)

    return run


class Traced:
    """A proxy for an adapter (cloud, CML, artifact store): every public method call is a
    span ``<system>.<method>`` with ``lrm.external=<system>``; attributes pass through."""

    def __init__(self, target: Any, system: str) -> None:
        self._target = target
        self._system = system

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not callable(value):
            return value
        return traced(f"{self._system}.{name}", value, **{"lrm.external": self._system})


def traced_adapter(target: Any, system: str) -> Any:
    """``Traced(target, system)`` when tracing is on, else ``target`` itself."""
    return Traced(target, system) if enabled() else target


class TracingMiddleware:
    """ASGI middleware: one server span per HTTP request, named by method and route path,
    with the correlation id the request middleware settled on (``X-Correlation-Id``, echoed
    in the response; the same id goes into the events the request records)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = headers.get("x-correlation-id") or headers.get("x-request-id")
        status = {"code": 500}

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                for key, value in message.get("headers", []):
                    if key.decode("latin-1").lower() == "x-correlation-id":
                        current.set_attribute("lrm.correlation_id", value.decode("latin-1"))
            await send(message)

        method = scope.get("method", "")
        with tracer().start_as_current_span(
            f"http {method}", kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope.get("path", ""),
                        **({"lrm.correlation_id": request_id} if request_id else {})},
        ) as current:
            try:
                await self.app(scope, receive, capture)
            finally:
                from api.metrics import _route_template  # the route as the metrics label it

                route = _route_template(scope)
                if route != "unmatched":
                    current.update_name(f"http {method} {route}")
                    current.set_attribute("http.route", route)
                current.set_attribute("http.response.status_code", status["code"])
                if status["code"] >= 500:
                    current.set_status(trace.StatusCode.ERROR)


# -- logs: ids a reader filters by, and the trace a line belongs to ---------------------------
_STREAM_ID = re.compile(r"\b(LabletInstance|Worker)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_ID_FIELD = {"LabletInstance": "instance_id", "Worker": "worker_id"}


def add_log_context(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: ``instance_id`` / ``worker_id`` fields for ids named in a line
    (processors log them in their messages), and ``trace_id`` / ``span_id`` inside a span."""
    for value in list(event_dict.values()):
        if not isinstance(value, str):
            continue
        for match in _STREAM_ID.finditer(value):
            event_dict.setdefault(_ID_FIELD[match.group(1)], match.group(0))
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def enrich_logs() -> None:
    """Put ``add_log_context`` in front of the root handler's structlog chain
    (``api.logging.configure_logging`` must have run)."""
    import logging

    import structlog

    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if isinstance(formatter, structlog.stdlib.ProcessorFormatter) and \
                add_log_context not in formatter.processors:
            formatter.processors = [add_log_context, *formatter.processors]
