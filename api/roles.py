"""Process roles: which parts of the system one ``lablet serve`` process runs.

``all`` (the default) is the embedded deployment: everything in one process. Split
deployments run one or more roles per process (``--role scheduler --role dispatcher`` or
``--role scheduler,dispatcher``), any number of replicas each:

- ``api``: the HTTP API, with its own projection runner (read-your-writes waits on it);
  several runners over the same read models never apply an event twice;
- ``projections``: a projection runner alone (keeps read models fresh without an API);
- ``scheduler``, ``autoscaler``, ``workers`` (worker controller), ``instances`` (instance
  controller), ``dispatcher`` (webhook delivery), ``housekeeping`` (overrun watcher, fleet
  reconciler, table pruning): process managers. Each runs under a
  lease named after the role, so one replica is active and the others stand by.
"""

from __future__ import annotations

from collections.abc import Iterable

PROCESSOR_ROLES: tuple[str, ...] = ("scheduler", "autoscaler", "workers", "instances", "dispatcher", "housekeeping")
ROLES: tuple[str, ...] = ("api", "projections", *PROCESSOR_ROLES)
ALL = "all"


def parse_roles(values: Iterable[str] | str | None) -> frozenset[str]:
    """``["api", "scheduler,dispatcher"]`` → the set of roles; empty or ``all`` → every role."""
    if values is None:
        return frozenset(ROLES)
    if isinstance(values, str):
        values = [values]
    names = [part.strip().lower() for value in values for part in value.split(",") if part.strip()]
    if not names or ALL in names:
        return frozenset(ROLES)
    unknown = sorted(set(names) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}; known: {', '.join((ALL, *ROLES))}")
    return frozenset(names)


def describe(roles: frozenset[str]) -> str:
    return ALL if roles == frozenset(ROLES) else ",".join(r for r in ROLES if r in roles)


def health_app(container: object):  # noqa: ANN201 - a Starlette app
    """/healthz, /readyz and /metrics for a process without the API (a processor role).

    Ready means: the event store answers and every processor role either leads or stands by.
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "roles": describe(container.roles)})  # type: ignore[attr-defined]

    def readyz(request: Request) -> Response:
        report = container.readiness()  # type: ignore[attr-defined]
        report["leases"] = container.lease_status()  # type: ignore[attr-defined]
        return JSONResponse(report, status_code=200 if report["ready"] else 503)

    def metrics(request: Request) -> Response:
        container.refresh_gauges()  # type: ignore[attr-defined]
        return container.metrics.render()  # type: ignore[attr-defined]

    app = Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)])
    app.state.container = container
    return app
