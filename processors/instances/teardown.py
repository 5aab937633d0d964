"""STOPPING, STOPPED and TERMINATED: the score report stored, the lab stopped, then deleted
(archive and release), and the clean-up after a termination."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from domain.instance import InstanceState, LabletInstance
from processors.instances import naming
from processors.ports.artifacts import ArtifactError
from processors.ports.cml import CmlEndpoint, CmlError, CmlLabNotFound

if TYPE_CHECKING:  # a part of InstanceController: runs with the state ControllerCore sets up
    from processors.instances.core import ControllerCore as _Controller
else:
    _Controller = object

log = logging.getLogger(__name__)

S = InstanceState


class Teardown(_Controller):
    """The steps that end a lab's life on CML."""

    async def _stop(self, instance: LabletInstance, now: datetime) -> bool:
        try:
            if instance.score_report is not None:
                await asyncio.to_thread(
                    self.artifacts.put, naming.score_report_key(instance),
                    json.dumps(instance.score_report.to_dict(), sort_keys=True).encode("utf-8"), "application/json",
                )
            endpoint = self._endpoint(instance)
            if endpoint is not None:
                lab_id = await self._find_lab(instance, endpoint)
                if lab_id is not None:
                    await self.cml.stop_lab(endpoint, lab_id)
            elif not self._worker_gone(instance):
                self._retry_later(instance.id, self.settings.worker_wait)
                return False
        except (CmlError, ArtifactError) as error:
            log.warning("stopping %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        instance.mark_stopped(self._ctx(self.clock.now(), "lab_stopped"))
        self.store.save(instance)
        return True

    async def _archive(self, instance: LabletInstance, now: datetime) -> bool:
        if not await self._delete_lab(instance):
            return False
        ctx = self._ctx(self.clock.now(), "lab_deleted")
        held_on = instance.worker_id
        instance.archive(ctx)
        self._save_with_release(instance, held_on, ctx, "instance archived")
        return True

    async def _clean_up(self, instance: LabletInstance) -> None:
        """No lab on CML and no hold on the worker for a terminated instance."""
        if not await self._delete_lab(instance):
            return  # CML unreachable for now: ``_retry_at`` is set, the checkpoint waits
        if instance.worker_id and instance.termination_reason != "completed":  # archiving released it
            worker = self._worker(instance.worker_id)
            if worker is not None and worker.release(instance.id, self._ctx(self.clock.now(), "cleanup"),
                                                     reason=f"instance terminated ({instance.termination_reason})"):
                self.store.save(worker)
        if instance.id not in self._cleanup:
            self._cleaned.add(instance.id)
        self._forget(instance.id)

    async def _delete_lab(self, instance: LabletInstance) -> bool:
        """True once the instance has no lab on CML (or its worker is gone: nothing left to
        reach; a stopped worker is reconciled when it runs again)."""
        endpoint = self._endpoint(instance)
        if endpoint is None:
            if self._worker_gone(instance) or instance.state is S.TERMINATED:
                return True
            self._retry_later(instance.id, self.settings.worker_wait)
            return False
        try:
            lab_id = await self._find_lab(instance, endpoint)
            if lab_id is not None:
                await self.cml.delete_lab(endpoint, lab_id)
        except CmlError as error:
            log.warning("deleting the lab of %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        return True

    async def _find_lab(self, instance: LabletInstance, endpoint: CmlEndpoint) -> str | None:
        """The instance's lab on CML, by title (the recorded id may be of a deleted attempt)."""
        return await self.cml.find_lab_by_title(endpoint, naming.lab_title(instance))

    async def _running_lab(self, instance: LabletInstance, endpoint: CmlEndpoint) -> str:
        """The lab of an instance past READY: its recorded id, else found by title."""
        lab_id = instance.cml_lab_id or await self._find_lab(instance, endpoint)
        if lab_id is None:
            raise CmlLabNotFound(endpoint.worker_id, naming.lab_title(instance))
        return lab_id
