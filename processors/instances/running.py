"""READY, RUNNING and COLLECTING: a lab restarted from STOPPED runs on CML again; collection
stores the node configs as an artifact and starts grading."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from domain.instance import InstanceState, LabletInstance
from processors.instances import naming
from processors.ports.artifacts import ArtifactError
from processors.ports.cml import CmlError, LabStatus

if TYPE_CHECKING:  # a part of InstanceController: runs with the state ControllerCore sets up
    from processors.instances.core import ControllerCore as _Controller
else:
    _Controller = object

log = logging.getLogger(__name__)

S = InstanceState


class Running(_Controller):
    """The steps of a lab in use."""

    async def _lab_running_after_restart(self, instance: LabletInstance) -> bool:
        """A lab restarted (STOPPED → RUNNING) must run on CML again; False to look later."""
        stopped, running = instance.entered_at(S.STOPPED), instance.entered_at(S.RUNNING)
        if stopped is None or running is None or running < stopped:
            return True  # never stopped: its lab has run since READY
        if self._restart_checked.get(instance.id) == running:
            return True
        endpoint = self._endpoint(instance)
        if endpoint is None:
            self._retry_later(instance.id, self.settings.worker_wait)
            return False
        try:
            lab_id = await self._running_lab(instance, endpoint)
            state = await self.cml.lab_state(endpoint, lab_id)
            if state.status is not LabStatus.STARTED:
                await self.cml.start_lab(endpoint, lab_id)
            await self.cml.wait_until_booted(endpoint, lab_id, self.settings.boot_timeout_seconds)
        except CmlError as error:
            log.warning("restart of the lab of %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        self._restart_checked[instance.id] = running
        return True

    async def _collect(self, instance: LabletInstance, now: datetime) -> bool:
        endpoint = self._endpoint(instance)
        if endpoint is None:
            self._retry_later(instance.id, self.settings.worker_wait)
            return False
        try:
            lab_id = await self._running_lab(instance, endpoint)
            configs = await self.cml.node_configs(endpoint, lab_id)
            collected_at = self.clock.now()
            evidence = {
                "instance_id": instance.id, "lab_id": lab_id, "worker_id": instance.worker_id,
                "collected_at": collected_at.isoformat(), "node_configs": configs,
            }
            uri = await asyncio.to_thread(
                self.artifacts.put, naming.evidence_key(instance),
                json.dumps(evidence, sort_keys=True, indent=1).encode("utf-8"), "application/json",
            )
        except (CmlError, ArtifactError) as error:
            log.warning("collection of %s failed: %s; trying again later", instance.id, error)
            self._retry_later(instance.id)
            return False
        version = self._version(instance)
        session = {
            "session_id": naming.grading_session_id(instance),
            "instance_id": instance.id,
            "definition_name": instance.definition_name,
            "definition_version": instance.definition_version,
            "grading_rules_uri": version.grading_rules_uri if version else None,
            "evidence_uri": uri,
            "nodes": sorted(configs),
            "collected_at": collected_at.isoformat(),
            "owner_id": instance.owner_id,
        }
        instance.start_grading(session, self._ctx(collected_at, "collected"))
        self.store.save(instance)
        return True
