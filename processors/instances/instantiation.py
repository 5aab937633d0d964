"""INSTANTIATING: find or import the lab (title = instance id), start it, wait until booted,
``mark_ready`` with the user session; on failure delete the lab and record the failure
(retried after a backoff, at most 3 times)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from domain.errors import InvalidInput
from domain.instance import InstanceState, LabletInstance
from domain.lab_yaml import rewrite_ports
from processors.instances import naming
from processors.instances.core import GONE, REACHABLE
from processors.instances.session import user_session
from processors.ports.artifacts import ArtifactError
from processors.ports.cml import CmlEndpoint, CmlError, CmlLabNotFound, LabStatus

if TYPE_CHECKING:  # a part of InstanceController: runs with the state ControllerCore sets up
    from processors.instances.core import ControllerCore as _Controller
else:
    _Controller = object

log = logging.getLogger(__name__)

S = InstanceState


class Instantiation(_Controller):
    """Drives an INSTANTIATING instance to READY (or to a recorded failure)."""

    async def _instantiating(self, instance: LabletInstance, now: datetime) -> bool:
        if instance.awaiting_retry:
            at = self._next_attempt_at(instance)
            if now < at:
                self._retry_at[instance.id] = at
                return False
            instance.start_instantiation(instance.instantiation_attempt + 1, self._ctx(now, "retry"))
            self.store.save(instance)
            return True
        worker = self._worker_info(instance.worker_id)
        if worker is None or worker.state in GONE:
            self._terminate(instance, "worker_lost", f"worker {instance.worker_id} is gone "
                            f"({worker.state.value if worker else 'unknown'}) during instantiation",
                            self._ctx(now, "worker_lost"))
            return True
        if worker.state not in REACHABLE or not worker.ip:
            self._retry_later(instance.id, self.settings.worker_wait)  # booked ahead of the worker's boot
            return False
        endpoint = self.endpoint_for(worker.worker_id, worker.ip)
        title = naming.lab_title(instance)
        lab_id: str | None = None
        try:
            lab_id = await self.cml.find_lab_by_title(endpoint, title)
            if lab_id is None:
                lab_yaml = await self._lab_yaml(instance)
                lab_id = await self.cml.import_lab(endpoint, lab_yaml, title)
            if instance.cml_lab_id != lab_id:
                instance.record_lab_imported(lab_id, self._ctx(self.clock.now(), "lab_imported"))
                self.store.save(instance)
            state = await self.cml.lab_state(endpoint, lab_id)
            if state.status is not LabStatus.STARTED:
                await self.cml.start_lab(endpoint, lab_id)
            if not self._lab_start_recorded(instance):
                instance.record_lab_started(self._ctx(self.clock.now(), "lab_started"))
                self.store.save(instance)
            await self.cml.wait_until_booted(endpoint, lab_id, self.settings.boot_timeout_seconds)
        except (CmlError, ArtifactError, InvalidInput) as error:
            await self._attempt_failed(instance, endpoint, lab_id, error)
            return True
        try:
            consoles = await self.cml.consoles(endpoint, lab_id)
        except CmlError as error:  # the lab is up: a user without console keys can still log in
            log.warning("no console keys for %s (lab %s): %s", instance.id, lab_id, error)
            consoles = []
        session = user_session(
            instance, self._version(instance), host=worker.ip, lab_id=lab_id,
            login_url_template=self.settings.login_url_template, consoles=consoles,
            console_url_template=self.settings.console_url_template,
        )
        instance.mark_ready(session, self._ctx(self.clock.now(), "lab_booted"))
        self.store.save(instance)
        return True

    def _lab_start_recorded(self, instance: LabletInstance) -> bool:
        return any(
            isinstance(s.event, LabletInstance.LabStarted) and s.event.attempt == instance.instantiation_attempt
            for s in self.store.read_stream(instance.id)
        )

    def _next_attempt_at(self, instance: LabletInstance) -> datetime:
        failed_at = max(
            (s.event.timestamp for s in self.store.read_stream(instance.id)
             if isinstance(s.event, LabletInstance.InstantiationFailed)),
            default=instance.entered_at(S.INSTANTIATING) or self.clock.now(),
        )
        return failed_at + self.settings.retry_delay * 2 ** max(instance.retry_count - 1, 0)

    async def _lab_yaml(self, instance: LabletInstance) -> str:
        uri = instance.lab_yaml_uri
        if uri is None:  # instantiation started without a prepared YAML: the definition's own
            version = self._version(instance)
            if version is None:
                raise InvalidInput("definition", f"{instance.definition_name} {instance.definition_version} "
                                   "is not published")
            uri = version.lab_yaml_uri
        text = (await asyncio.to_thread(self.artifacts.get, uri)).decode("utf-8")
        if "${" in text:  # placeholders left (rewriting parses the document: skip when none)
            text = rewrite_ports(text, dict(instance.allocated_ports)).text
        return text

    async def _attempt_failed(
        self, instance: LabletInstance, endpoint: CmlEndpoint, lab_id: str | None, error: Exception
    ) -> None:
        """Delete what the attempt left on CML, then record the failure (retry or terminate).

        The lab goes first: if we crash in between, the attempt simply runs again.
        """
        text = f"{type(error).__name__}: {error}"
        log.warning("instantiation of %s failed (attempt %d): %s", instance.id, instance.instantiation_attempt, text)
        try:
            if lab_id is None:
                lab_id = await self.cml.find_lab_by_title(endpoint, naming.lab_title(instance))
            if lab_id is not None:
                await self.cml.delete_lab(endpoint, lab_id)
        except CmlError as cleanup_error:  # the next attempt (or the cleanup) finds it by title
            log.warning("could not delete the lab of failed attempt of %s: %s", instance.id, cleanup_error)
        retryable = isinstance(error, CmlLabNotFound) or bool(getattr(error, "retryable", False))
        ctx = self._ctx(self.clock.now(), "instantiation_failed")
        if not retryable:
            self._terminate(instance, "instantiation_failed", text, ctx)
            return
        held_on = instance.worker_id
        if not instance.instantiation_failed(text, ctx):  # retries exhausted: terminated
            self._save_with_release(instance, held_on, ctx, "instance terminated (max_retries_exceeded)")
        else:
            self.store.save(instance)
