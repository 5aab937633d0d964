"""Worker templates (SPEC §3.1): create-or-update, removal, and seeding from the YAML file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from domain.context import CommandContext
from domain.errors import ConcurrencyConflict, InvalidInput, NotFound
from domain.naming import validate_name
from domain.worker_template import WorkerTemplate, WorkerTemplateSpec, templates_to_seed
from processors.commands.preconditions import require_version
from processors.commands import AggregateStore
from processors.retry import retry_on_conflict

# Given a template name, the ids of the workers that still use it (not TERMINATED/FAILED).
LiveWorkersOf = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class TemplateWritten:
    position: int
    created: bool
    changed_fields: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.created or bool(self.changed_fields)


class TemplateService:
    def __init__(self, store: AggregateStore, live_workers_of: LiveWorkersOf) -> None:
        self.store = store
        self.live_workers_of = live_workers_of

    def get(self, name: str) -> WorkerTemplate:
        """The registered template; ``NotFound`` if unknown or removed."""
        try:
            validate_name(name)
        except InvalidInput:
            raise NotFound(f"worker template {name!r} not found") from None
        try:
            template = self.store.get(WorkerTemplate.stream_id_for(name))
        except NotFound:
            raise NotFound(f"worker template {name!r} not found") from None
        if not isinstance(template, WorkerTemplate) or template.removed:
            raise NotFound(f"worker template {name!r} not found")
        return template

    def put(self, spec: WorkerTemplateSpec, ctx: CommandContext, *,
            expected_version: int | None = None) -> TemplateWritten:
        """Register ``spec.name``, register it again after a removal, or update it.

        ``expected_version``: the stream version the caller read (``If-Match``); another is a
        ``PreconditionFailed`` (412), checked on the aggregate that is saved."""

        def attempt() -> TemplateWritten:
            stream = WorkerTemplate.stream_id_for(spec.name)
            if not self.store.exists(stream):
                require_version(None, expected_version, f"worker template {spec.name!r}")
                position = self.store.save(WorkerTemplate.register(spec, ctx))
                return TemplateWritten(position, True, tuple(spec.to_dict()))
            template: WorkerTemplate = self.store.get(stream)
            require_version(template, expected_version, f"worker template {spec.name!r}")
            if template.removed:
                template.reregister(spec, ctx)
                return TemplateWritten(self.store.save(template), True, tuple(spec.to_dict()))
            changed = template.update(spec, ctx)
            if not changed:
                return TemplateWritten(self.store.max_position(), False, ())
            return TemplateWritten(self.store.save(template), False, tuple(changed))

        return retry_on_conflict(attempt)

    def remove(self, name: str, ctx: CommandContext, *, reason: str = "",
               expected_version: int | None = None) -> int:
        """Remove a template; ``Conflict`` while a live worker uses it."""

        def attempt() -> int:
            template = self.get(name)
            require_version(template, expected_version, f"worker template {name!r}")
            template.remove(ctx, in_use_by=list(self.live_workers_of(name)), reason=reason)
            return self.store.save(template)

        return retry_on_conflict(attempt)

    def seed(self, specs: Iterable[WorkerTemplateSpec], ctx: CommandContext) -> list[str]:
        """Register the file's templates whose names are unknown; returns the names created.

        Removed templates count as known (an admin's removal is an edit too), so a
        restart never brings back what an admin deleted or overwrites what one changed.
        """
        specs = list(specs)
        known = [s.name for s in specs if self.store.exists(WorkerTemplate.stream_id_for(s.name))]
        created: list[str] = []
        for spec in templates_to_seed(specs, known):
            try:
                self.store.save(WorkerTemplate.register(spec, ctx))
            except ConcurrencyConflict:
                continue  # another replica seeded it a moment ago
            created.append(spec.name)
        return created
