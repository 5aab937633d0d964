"""Phase 4 of a pass: SCHEDULED instances due (``timeslot_start - lead``; ASAP at once) go
INSTANTIATING with their rewritten lab YAML stored in the artifact store."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from domain.context import CommandContext
from domain.errors import InvalidInput, NotFound
from domain.instance import InstanceState, LabletInstance
from domain.worker import WorkerState
from processors.scheduler.report import PassReport

if TYPE_CHECKING:  # a phase of the Scheduler: runs with the state SchedulerCore sets up
    from processors.scheduler.core import SchedulerCore as _Scheduler
else:
    _Scheduler = object

log = logging.getLogger(__name__)

I = InstanceState  # noqa: E741 - short alias for the state table
REACHABLE = frozenset({WorkerState.RUNNING, WorkerState.DRAINING})


class Instantiation(_Scheduler):
    """Phase 4: start instantiation when due."""

    def _instantiate_due(self, now: datetime, report: PassReport) -> None:
        for instance_id in self.view.pop_due(now):
            ctx = self._ctx(now, f"instantiate:{instance_id}")
            instance = self.view.instances[instance_id]
            worker = self.view.workers.get(instance.worker_id or "")
            if instance.state is I.SCHEDULED and worker is not None and worker.state not in REACHABLE:
                # Not before its worker runs: a boot can still fail, and a lab that never
                # reached CML must be re-placed, not ended with its worker (SPEC §5).
                ready = worker.expected_ready_at
                later = ready if ready is not None and ready > now else now + self.settings.recovery_grace
                self.view.push_due(later, instance_id)
                continue
            try:
                uri = self.lab_yaml.prepare(instance) if self.lab_yaml is not None else None
            except (NotFound, InvalidInput) as error:  # nothing to retry: the lab cannot be built
                log.warning("scheduler %s: lab YAML for %s: %s", self.name, instance_id, error)
                if self._change_instance(instance_id, lambda i: _fail_instantiation(i, str(error), ctx)):
                    report.terminated += 1
                continue
            except Exception:  # noqa: BLE001 - artifact store outage: try again shortly
                log.exception("scheduler %s: preparing the lab YAML of %s failed; retrying", self.name, instance_id)
                self.view.push_due(now + self.settings.recovery_grace, instance_id)
                continue

            def start(instance: LabletInstance) -> bool:
                if instance.state is not I.SCHEDULED:
                    return False
                instance.start_instantiation(1, ctx, lab_yaml_uri=uri)
                return True

            if self._change_instance(instance_id, start):
                report.instantiated += 1


def _fail_instantiation(instance: LabletInstance, detail: str, ctx: CommandContext) -> bool:
    if instance.state is not I.SCHEDULED:
        return False
    instance.terminate("instantiation_failed", ctx, detail=detail)
    return True
