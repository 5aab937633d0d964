"""Instantiation commands: attempts on CML, their failures and retries, READY."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from domain.context import CommandContext
from domain.errors import Conflict, IllegalTransition, InvalidInput
from domain.instance.states import MAX_INSTANTIATION_RETRIES, InstanceState
from domain.instance.values import require_mapping

if TYPE_CHECKING:  # the commands run on a LabletInstance: its events and state
    from domain.instance.events import InstanceEvents as _Instance
else:
    _Instance = object

S = InstanceState


class InstantiationCommands(_Instance):
    """SCHEDULED -> INSTANTIATING (attempts 1..n) -> READY."""

    def start_instantiation(self, attempt: int, ctx: CommandContext, *, lab_yaml_uri: str | None = None) -> None:
        """Attempt 1 from SCHEDULED; attempt n+1 after attempt n failed and may be retried."""
        if self.state is S.INSTANTIATING and not self.awaiting_retry and attempt == self.instantiation_attempt:
            return  # this attempt is already running
        self._require(S.INSTANTIATING, "start instantiation")
        if self.state is S.INSTANTIATING and not self.awaiting_retry:
            raise IllegalTransition("LabletInstance", self.state.value, f"start attempt {attempt} "
                                    f"while attempt {self.instantiation_attempt} is running")
        expected = self.instantiation_attempt + 1
        if attempt != expected:
            raise Conflict(f"instantiation attempt {attempt} requested, next attempt is {expected}")
        self._record(self.InstantiationStarted, ctx, attempt=attempt, worker_id=self.worker_id,
                     lab_yaml_uri=lab_yaml_uri or self.lab_yaml_uri)

    def _require_attempt_running(self, action: str) -> None:
        if self.state is not S.INSTANTIATING or self.awaiting_retry:
            raise IllegalTransition("LabletInstance", self.state.value, action)

    def record_lab_imported(self, cml_lab_id: str, ctx: CommandContext) -> None:
        self._require_attempt_running("record a lab import")
        if not isinstance(cml_lab_id, str) or not cml_lab_id:
            raise InvalidInput("cml_lab_id", "must be a non-empty string")
        self._record(self.LabImported, ctx, cml_lab_id=cml_lab_id, attempt=self.instantiation_attempt)

    def record_lab_started(self, ctx: CommandContext) -> None:
        self._require_attempt_running("record a lab start")
        self._record(self.LabStarted, ctx, cml_lab_id=self.cml_lab_id, attempt=self.instantiation_attempt)

    def instantiation_failed(self, error: str, ctx: CommandContext) -> bool:
        """Record a failed attempt; returns True if it will be retried.

        After ``MAX_INSTANTIATION_RETRIES`` retries the instance is terminated in the same
        command with reason ``max_retries_exceeded`` (nothing else may happen to it).
        """
        self._require_attempt_running("record an instantiation failure")
        will_retry = self.retry_count < MAX_INSTANTIATION_RETRIES
        self._record(
            self.InstantiationFailed, ctx, error=str(error), attempt=self.instantiation_attempt,
            retry_count=self.retry_count + (1 if will_retry else 0), will_retry=will_retry,
        )
        if not will_retry:
            self._terminate("max_retries_exceeded", ctx, detail=str(error))
        return will_retry

    def mark_ready(self, user_session: Mapping[str, Any], ctx: CommandContext) -> None:
        self._require(S.READY, "become ready")
        self._require_attempt_running("become ready")
        self._record(self.InstanceReady, ctx, user_session=require_mapping(user_session, "user_session"))
