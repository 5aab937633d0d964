"""Following ``$all``: the library's pull loop, woken by an EventStoreDB live subscription.

The library's ``ListenNotifySubscription`` runs a thread that pulls notifications after
the last position (in batches of up to 500) whenever it is woken up. Here the wake-up is
a server-side filtered catch-up subscription started at the end of ``$all``: each new
event of ours wakes the puller, which then reads everything new in one go.

The live subscription is confirmed by the server *before* the first pull starts, so an
event is either found by that first pull or wakes a later one: nothing falls between.
If the server drops the live subscription, it is re-opened and the puller woken (the
pull covers whatever was recorded in between).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from esdbclient.exceptions import EventStoreDBClientException
from eventsourcing.persistence import ListenNotifySubscription

if TYPE_CHECKING:
    from adapters.eventstore.esdb.recorders import EsdbApplicationRecorder

RESUBSCRIBE_DELAY = 0.5


class EsdbSubscription(ListenNotifySubscription["EsdbApplicationRecorder"]):
    def __init__(
        self,
        recorder: EsdbApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        self._filter = [recorder.naming.type_filter(topics)]
        self._live = self._listen_from_end(recorder)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._listener = threading.Thread(target=self._listen, name="esdb-listen", daemon=True)
        self._listener.start()

    def _listen_from_end(self, recorder: EsdbApplicationRecorder) -> Any:
        return recorder.client.subscribe_to_all(from_end=True, filter_include=self._filter)

    def _listen(self) -> None:
        while not self._has_been_stopped:
            try:
                for _ in self._live:
                    self._has_been_notified.set()
            except EventStoreDBClientException:
                pass  # dropped by the server (restart, "consumer too slow"): listen again
            if self._has_been_stopped:
                return
            self._resubscribe()

    def _resubscribe(self) -> None:
        while not self._stopping.wait(RESUBSCRIBE_DELAY):
            try:
                live = self._listen_from_end(self._recorder)
            except Exception:  # noqa: BLE001 - server still away: try again later
                continue
            with self._lock:
                self._live = live
                if self._has_been_stopped:
                    live.stop()
            self._has_been_notified.set()
            return

    def stop(self) -> None:
        self._stopping.set()
        super().stop()
        with self._lock:
            self._live.stop()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._listener.join(timeout=5)
