"""Following the log: which instances exist, where they are placed, and which terminations
still need their lab cleaned up (the checkpoint never passes one of those)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.instance import LabletInstance
from domain.worker import Worker
from projections.events import StoredEvent

if TYPE_CHECKING:  # a part of InstanceController: runs with the state ControllerCore sets up
    from processors.instances.core import ControllerCore as _Controller
else:
    _Controller = object


# Events that say where an instance lives and whether it is finished (the start-up re-scan).
SCAN_EVENTS = (
    LabletInstance.InstanceRequested,
    LabletInstance.InstanceScheduled,
    LabletInstance.InstanceRequeued,
    LabletInstance.InstanceMoved,
    LabletInstance.InstanceArchived,
    LabletInstance.InstanceTerminated,
)
# Worker events that change only its reservations, not where or whether its CML runs.
LEDGER_EVENTS = (Worker.CapacityReserved, Worker.CapacityReleased, Worker.ReservationExtended)


def _topic(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


class LogFollowing(_Controller):
    """Which instances exist and what changed: a re-scan at start, then the followed log."""

    def rescan(self) -> int:
        """Find every instance and where it lives (start-up): live ones get a look at once.
        Returns how many live instances were found."""
        topics = [_topic(cls) for cls in SCAN_EVENTS]
        after, head = 0, self.store.max_position()
        while after < head:
            batch = self.store.read_all(after=after, limit=1000, topics=topics)
            if not batch:
                break
            for stored in batch:
                self._note(stored, cleanup=False)
            after = batch[-1].position or head
        self.position = self._saved_checkpoint = self.checkpoints.load_checkpoint(self.settings.checkpoint_name)
        self._dirty.update(self._live)
        return len(self._live)

    def poll_log(self, limit: int = 1000) -> int:
        """Read what was appended since the last poll; returns how many events were read."""
        count = 0
        while True:
            batch = self.store.read_all(after=self.position, limit=limit)
            if not batch:
                break
            for stored in batch:
                if isinstance(stored.event, LabletInstance.Event):
                    self._note(stored, cleanup=True)
                    # Only ids a pass can look at: a terminated instance (cleaned up
                    # already) would stay in the set forever, and every pass would cost
                    # the instances of the whole day so far.
                    if stored.stream_id in self._live or stored.stream_id in self._cleanup:
                        self._dirty.add(stored.stream_id)
                elif isinstance(stored.event, Worker.Event) and not isinstance(stored.event, LEDGER_EVENTS):
                    self._workers.pop(stored.stream_id, None)  # its state or IP may have changed
            self.position = batch[-1].position or self.position
            count += len(batch)
            if len(batch) < limit:
                break
        self._save_checkpoint()
        return count

    def _note(self, stored: StoredEvent, *, cleanup: bool) -> None:
        event, instance_id = stored.event, stored.stream_id
        if isinstance(event, LabletInstance.InstanceRequested):
            if instance_id not in self._finished:
                self._live.setdefault(instance_id, None)
        elif isinstance(event, LabletInstance.InstanceScheduled):
            self._placed[instance_id] = event.worker_id
        elif isinstance(event, LabletInstance.InstanceMoved):
            self._placed[instance_id] = event.worker_id
        elif isinstance(event, LabletInstance.InstanceRequeued):
            self._placed.pop(instance_id, None)
        elif isinstance(event, LabletInstance.InstanceArchived):
            self._finished.add(instance_id)
        elif isinstance(event, LabletInstance.InstanceTerminated):
            self._finished.add(instance_id)
            self._live.pop(instance_id, None)
            if instance_id in self._cleaned:
                self._cleaned.discard(instance_id)  # our own termination: cleaned up already
            elif cleanup and stored.position is not None:
                self._cleanup.setdefault(instance_id, stored.position)

    def _save_checkpoint(self) -> None:
        """Never past a termination whose lab may still be on CML: after a crash the
        follower reads it again and cleans up."""
        pending = [p - 1 for p in self._cleanup.values()]
        checkpoint = min([self.position, *pending])
        if checkpoint != self._saved_checkpoint:  # passes run twice a second: write only changes
            self.checkpoints.save_checkpoint(self.settings.checkpoint_name, checkpoint)
            self._saved_checkpoint = checkpoint
