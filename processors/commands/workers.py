"""Workers (SPEC §3.4) as an admin drives them: provision from a template, drain, cancel, stop.

Provisioning only records the decision (a PENDING worker with a snapshot of its
template); the worker controller launches the VM. Stop follows the aggregate's rule: it is
refused while the worker holds a reservation active now (drain it first).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from domain.context import CommandContext
from domain.errors import InvalidInput, NotFound
from domain.worker import Worker
from domain.worker_template import WorkerTemplate
from processors.commands import AggregateStore
from processors.retry import retry_on_conflict

# "use the template's drain_timeout_hours" (None already means "no timeout").
TEMPLATE_TIMEOUT: object = object()

WORKER_ID = re.compile(r"^Worker-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class WorkerProvisioned:
    worker_id: str
    position: int


class WorkerService:
    def __init__(self, store: AggregateStore) -> None:
        self.store = store

    def get(self, worker_id: str) -> Worker:
        """The worker; ``NotFound`` for an unknown id or one that names another aggregate."""
        if not isinstance(worker_id, str) or not WORKER_ID.match(worker_id):
            raise NotFound(f"worker {worker_id!r} not found")
        try:
            worker = self.store.get(worker_id)
        except NotFound:
            raise NotFound(f"worker {worker_id!r} not found") from None
        if not isinstance(worker, Worker):
            raise NotFound(f"worker {worker_id!r} not found")
        return worker

    def provision(self, template_name: str, ctx: CommandContext, *, reason: str = "admin") -> WorkerProvisioned:
        """A new PENDING worker from the named template (the controller will launch it)."""
        stream = WorkerTemplate.stream_id_for(template_name)
        try:
            template: WorkerTemplate = self.store.get(stream)
        except NotFound:
            template = None  # type: ignore[assignment]
        if template is None or template.removed:
            raise InvalidInput("template", f"no worker template named {template_name!r}")
        worker = Worker.request(template.spec, ctx, reason=reason)
        return WorkerProvisioned(worker.id, self.store.save(worker))

    def drain(
        self, worker_id: str, ctx: CommandContext, *, reason: str = "admin",
        timeout_hours: float | None | object = TEMPLATE_TIMEOUT,
    ) -> int:
        """An admin drain, the only one that may carry a timeout (SPEC §5). By default the
        template's ``drain_timeout_hours``; ``None`` drains without a timeout."""

        def command(worker: Worker) -> None:
            hours = worker.template.drain_timeout_hours if timeout_hours is TEMPLATE_TIMEOUT else timeout_hours
            worker.start_draining(reason, ctx, timeout_hours=hours)  # type: ignore[arg-type]

        return self._change(worker_id, command)

    def cancel_drain(self, worker_id: str, ctx: CommandContext, *, reason: str = "admin") -> int:
        return self._change(worker_id, lambda w: w.cancel_drain(ctx, reason=reason))

    def stop(self, worker_id: str, ctx: CommandContext, *, reason: str = "admin") -> int:
        return self._change(worker_id, lambda w: w.stop(reason, ctx))

    def _change(self, worker_id: str, command: Callable[[Worker], None]) -> int:
        def attempt() -> int:
            worker = self.get(worker_id)
            command(worker)
            return self.store.save(worker)

        return retry_on_conflict(attempt)
