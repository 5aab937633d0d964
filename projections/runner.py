"""Runs projections: follow the log, apply each batch with its checkpoints (projections/applying.py).

Each projection is *live* (followed, serving), *rebuilding* (its version changed or an
admin rebuilds it: replayed into shadow tables while the live ones keep serving, then
promoted atomically — projections/targets.py), or *newer* (the stored model was built by a
newer version of the code, e.g. during a rolling deploy: this process serves it as it is
and never writes it). Rebuilding projections do not hold back read-your-writes waits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from projections.applying import BatchApplier, Behind
from projections.backoff import Backoff
from projections.bulk import replaying_whole_models
from projections.daemon import DaemonThread
from projections.events import StoredEvent
from projections.parking import PARKED, ParkedEvent
from projections.ports import EventFeed
from projections.projection import Projection
from projections.readmodel import ReadModelStore
from projections.rebuild_progress import RebuildProgress
from projections.resolving import retry_parked, skip_parked
from projections.targets import SHADOW_SUFFIX, Target

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


class ProjectionRunner:
    def __init__(
        self,
        events: EventFeed,
        store: ReadModelStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = 1000,
        replay_batch_size: int | None = None,
        backoff: Backoff = Backoff(),
        idle_timeout: float = 0.1,
    ) -> None:
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate projection names: {names}")
        if any(n.endswith(SHADOW_SUFFIX) for n in names):
            raise ValueError(f"projection names may not end with {SHADOW_SUFFIX!r}: {names}")
        self.events = events
        self.store = store
        self.projections = list(projections)
        self.batch_size = batch_size
        # Catching up and rebuilding in this thread: bigger batches (fewer commits, hot
        # documents written less often). The follow thread keeps ``batch_size`` between live
        # batches, so a rebuild beside them delays them little.
        self.replay_batch_size = replay_batch_size or 5 * batch_size
        # A rebuild on its own: 4x that (a hot document growing with the log, e.g. a worker's
        # fleet-cost history, is re-encoded once per batch: fewer batches, fewer copies).
        self.rebuild_batch_size = 4 * self.replay_batch_size
        self.backoff = backoff
        self.idle_timeout = idle_timeout
        self.applier = BatchApplier(store)
        self._positions: dict[str, int] = {}  # checkpoint name -> committed position
        self._live: list[Target] = []
        self._shadows: list[Target] = []
        self._rebuilds: dict[str, RebuildProgress] = {}
        self._prepared = False
        self._requested: list[Projection] = []  # rebuilds asked for while following
        self._changed = threading.Condition()
        self._daemon = DaemonThread("projections", self._follow)
        self._subscription: object | None = None
        self.last_error: BaseException | None = None
        self.failures = 0

    # -- lifecycle ----------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Create tables; decide per projection: live, rebuild in a shadow, or leave (newer).

        Returns the names that are (re)built from position 0: new ones (no model to serve
        yet: built in place) and changed versions (built in a shadow copy while the old
        model serves).
        """
        self.store.ensure_tables([PARKED])
        checkpoints = self.store.checkpoints()
        live: list[Target] = []
        shadows: list[Target] = []
        rebuilt: list[str] = []
        for projection in self.projections:
            stored = checkpoints.get(projection.name)
            shadow = Target.shadow_of(projection)
            if stored is None:
                self._reset(Target.live(projection))
                live.append(Target.live(projection))
                rebuilt.append(projection.name)
            elif stored.version == projection.version:
                self.store.ensure_tables(projection.tables)
                live.append(Target.live(projection))
                self._positions[projection.name] = stored.position
                if shadow.name in checkpoints and projection.name in self._rebuilds:
                    shadows.append(shadow)  # an admin rebuild of this process, under way
            elif stored.version > projection.version:
                log.warning("projection %s was built by a newer version (%d > %d): serving it unchanged",
                            projection.name, stored.version, projection.version)
                self._positions[projection.name] = stored.position
            else:
                self.store.ensure_tables(projection.tables)  # the old model: still served
                self._positions[projection.name] = stored.position
                shadow_cp = checkpoints.get(shadow.name)
                if shadow_cp is None or shadow_cp.version != projection.version:
                    self._reset(shadow)  # a new rebuild (or one for another version: restart)
                else:
                    self.store.ensure_tables(shadow.tables)  # resume where it was
                    self._set_positions({shadow.name: shadow_cp.position})
                shadows.append(shadow)
                rebuilt.append(projection.name)
        self._live, self._shadows = live, shadows
        self._prepared = True
        for shadow in shadows:
            self._rebuilds.setdefault(shadow.projection.name, RebuildProgress(
                time.monotonic(), self._positions.get(shadow.name, 0), self._positions.get(shadow.name, 0)))
        return rebuilt

    def start(self) -> None:
        """Prepare, then follow the log in a background thread."""
        if self.running:
            return
        for name in self.prepare():
            log.info("projection %s is new or changed version: rebuilding", name)
        self._daemon.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._daemon.stop(timeout, wake=self._end_subscription)

    @property
    def running(self) -> bool:
        return self._daemon.running

    def _end_subscription(self) -> None:
        subscription = self._subscription
        if subscription is not None:
            subscription.stop()  # type: ignore[attr-defined]

    # -- positions ------------------------------------------------------------------------
    def position(self, name: str | None = None) -> int:
        """Checkpoint of one projection's served model, or the lowest of the followed ones
        (what every read model kept current has; rebuilding ones serve their old model)."""
        if name is not None:
            return self._positions.get(name, 0)
        if not self._prepared:
            return min((self._positions.get(p.name, 0) for p in self.projections), default=0)
        if not self._live:  # every model is rebuilding (or newer): nothing to wait for
            return self.events.max_position()
        return min(self._positions.get(t.name, 0) for t in self._live)

    def lag(self) -> int:
        """Events (by position) not yet applied by the slowest followed projection."""
        return max(0, self.events.max_position() - self.position())

    def is_followed(self, name: str) -> bool:
        """Whether the served model of ``name`` is kept current (not frozen while its new
        version rebuilds, nor owned by a newer version of the code)."""
        return any(t.name == name for t in self._live)

    def rebuilding(self) -> dict[str, dict[str, float | int | None]]:
        """Projection name -> progress of its shadow rebuild (position, head, events/s, ETA)."""
        head = self.events.max_position()
        with self._changed:
            return {name: progress.report(head) for name, progress in self._rebuilds.items()}

    def wait_rebuilt(self, timeout: float) -> bool:
        """True once no shadow rebuild is under way in this runner (woken on the switch-over)."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._rebuilds, timeout)

    def wait_for_position(self, position: int, timeout: float) -> bool:
        """True as soon as every followed projection has committed ``position`` (woken on commit)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.position() >= position, timeout)

    # -- synchronous work -------------------------------------------------------------------
    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply everything up to the current end of the log (promoting finished rebuilds),
        in this thread. Returns the number of events read."""
        if not self._prepared:
            self.prepare()
        count = self._replay(self._live + self._shadows, self.events.max_position(), progress)
        while self._shadows:  # events written meanwhile: the shadows catch up, then switch
            self._promote_finished()
            count += self._replay(self._shadows, self.events.max_position(), progress)
        return count

    def rebuild(self, projection: Projection | str, progress: Progress | None = None) -> int:
        """Rebuild one projection from position 0 into a shadow copy and switch to it.

        The live model keeps serving meanwhile (other processes too). ``progress(done,
        total)`` is called after each batch with positions. Returns the events replayed.
        """
        return self._rebuild([self._find(projection)], progress)

    def rebuild_all(self, progress: Progress | None = None) -> int:
        return self._rebuild(self.projections, progress)

    def _rebuild(self, projections: Sequence[Projection], progress: Progress | None) -> int:
        if self.running:
            return self._rebuild_while_following(projections, progress)
        if not self._prepared:
            self.prepare()
        shadows = [Target.shadow_of(p) for p in projections]
        for shadow in shadows:
            self._begin_shadow(shadow)
        count = 0
        with replaying_whole_models(self.store) as before_batch:
            while any(s in self._shadows for s in shadows):
                count += self._replay([s for s in shadows if s in self._shadows], self.events.max_position(),
                                      progress, before_batch, self.rebuild_batch_size)
                self._promote_finished()
        return count

    def _rebuild_while_following(self, projections: Sequence[Projection], progress: Progress | None) -> int:
        """The follow thread builds the shadows between live batches: the live models stay
        current (read-your-writes keeps working) until the switch. Returns the position reached."""
        names = {p.name for p in projections}
        with self._changed:
            self._requested.extend(p for p in projections if p not in self._requested)
            for name in names:
                self._rebuilds[name] = RebuildProgress(time.monotonic(), 0)
            self._changed.notify_all()
        while True:
            with self._changed:
                done = self._changed.wait_for(lambda: not names & set(self._rebuilds), timeout=0.5)
                reports = [self._rebuilds[n].report(self.events.max_position()) for n in names if n in self._rebuilds]
            if done:
                return min(self.position(n) for n in names)
            if not self.running:
                raise RuntimeError("the projection runner stopped before the rebuild finished")
            if progress is not None and reports:
                slowest = min(reports, key=lambda r: int(r["position"] or 0))
                progress(int(slowest["position"] or 0), int(slowest["head"] or 0))

    def _begin_shadow(self, shadow: Target) -> None:
        self._reset(shadow)
        with self._changed:
            self._rebuilds[shadow.projection.name] = RebuildProgress(time.monotonic(), 0)
        self._shadows = [s for s in self._shadows if s.name != shadow.name] + [shadow]

    def _take_requests(self) -> None:
        """Start the rebuilds asked for by another thread (``_rebuild_while_following``)."""
        with self._changed:
            requested, self._requested = self._requested, []
        for projection in requested:
            self._begin_shadow(Target.shadow_of(projection))

    # -- parked events (the admin's retry / skip: projections/resolving.py) -----------------
    def retry_parked(self, name: str, position: int) -> ParkedEvent:
        """Apply a parked event now (after a fix); ``ParkedRetryFailed`` if it fails again."""
        self.applier.forget_carried()  # written out of band: a rebuild's kept documents are stale
        return retry_parked(self.events, self.store, self._target_named(name), position)

    def skip_parked(self, name: str, position: int) -> ParkedEvent:
        """Give up on a parked event: it stays recorded (``skipped``), no longer holds readiness."""
        return skip_parked(self.store, name, position)

    def _target_named(self, name: str) -> Target:
        if name.endswith(SHADOW_SUFFIX):
            return Target.shadow_of(self._find(name[: -len(SHADOW_SUFFIX)]))
        return Target.live(self._find(name))

    # -- internals ----------------------------------------------------------------------------
    def _find(self, projection: Projection | str) -> Projection:
        name = projection if isinstance(projection, str) else projection.name
        for candidate in self.projections:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no projection named {name!r}")

    def _reset(self, target: Target) -> None:
        # Dropped before they are ensured: a new version may index a field (a new column)
        # that the tables of the old version lack.
        self.store.drop_tables(target.tables)
        self.store.ensure_tables(target.tables)
        with self.store.transaction() as tx:
            tx.save_checkpoint(target.name, 0, target.version)
        self._set_positions({target.name: 0})

    def _replay(self, targets: Sequence[Target], total: int, progress: Progress | None,
                before_batch: Callable[[], None] | None = None, limit: int | None = None) -> int:
        if not targets:
            return 0
        after = min(self._positions.get(t.name, 0) for t in targets)
        count = 0
        while True:
            if before_batch is not None:
                before_batch()
            batch = self.events.read_all(after=after, limit=limit or self.replay_batch_size)
            if not batch:
                break
            try:
                self._apply(batch, after, targets)
            except Behind:
                self._resync()
                after = min(self._positions.get(t.name, 0) for t in targets)
                continue
            after = batch[-1].position or after
            count += len(batch)
            if progress is not None:
                progress(after, max(total, after))
        return count

    def _follow(self) -> None:
        attempt = 0
        while not self._daemon.stopping.is_set():
            after = self.position()
            try:
                with self.events.subscribe(after=after) as subscription:
                    self._subscription = subscription
                    while not self._daemon.stopping.is_set():
                        if self._requested:
                            self._take_requests()
                        # While a shadow rebuilds, don't idle: each turn also advances it.
                        batch = subscription.next_batch(timeout=0 if self._shadows else self.idle_timeout)
                        for start in range(0, len(batch), self.batch_size):
                            chunk = batch[start : start + self.batch_size]
                            self._apply(chunk, after, self._live)
                            after = chunk[-1].position or after
                        if self._shadows and self._rebuild_step():
                            raise Behind("promoted")  # the promoted model follows from its checkpoint
                        attempt = 0
            except Behind:
                self._resync()
                continue
            except Exception as error:  # noqa: BLE001 - an outage: retried forever, never skipped
                attempt += 1
                self.failures += 1
                self.last_error = error
                delay = self.backoff.delay(attempt)
                log.exception("projection batch failed (attempt %d), retrying in %.2fs", attempt, delay)
                self._daemon.stopping.wait(delay)
            finally:
                self._subscription = None

    def _rebuild_step(self) -> bool:
        """One batch of the shadow rebuilds; True once some were caught up and promoted."""
        after = min(self._positions.get(t.name, 0) for t in self._shadows)
        batch = self.events.read_all(after=after, limit=self.batch_size)
        if batch:
            self._apply(batch, after, self._shadows)
            return False
        return self._promote_finished()

    def _promote_finished(self) -> bool:
        """Promote every shadow that has applied the whole log (as of now)."""
        head = self.events.max_position()
        promoted = False
        for shadow in list(self._shadows):
            if self._positions.get(shadow.name, 0) < head:
                continue
            if self.store.promote(shadow.pairs(), shadow.name, shadow.projection.name):
                log.info("projection %s rebuilt: switched to the new model", shadow.projection.name)
                self._retarget_parked(shadow)
            promoted = True
            self._shadows.remove(shadow)
            self._live = [t for t in self._live if t.name != shadow.projection.name] + [Target.live(shadow.projection)]
            with self._changed:
                self._rebuilds.pop(shadow.projection.name, None)
                self._positions.pop(shadow.name, None)
            stored = self.store.checkpoint(shadow.projection.name)
            self._set_positions({shadow.projection.name: stored.position if stored else 0})
        return promoted

    def _retarget_parked(self, shadow: Target) -> None:
        """After a switch, the new model's parked events are the projection's; the old ones go."""
        table = PARKED
        with self.store.transaction() as tx:
            for doc in tx.query(table.name, where={"projection": [shadow.projection.name, shadow.name]}):
                key = f"{doc['projection']}@{doc['position']:016d}"
                tx.delete(table.name, key)
                if doc["projection"] == shadow.name:
                    doc["projection"] = shadow.projection.name
                    tx.put(table.name, f"{shadow.projection.name}@{doc['position']:016d}", doc)

    def _apply(self, batch: list[StoredEvent], after: int, targets: Sequence[Target]) -> None:
        if not targets:
            return
        committed = self.applier.apply(batch, after, targets)
        self._set_positions(committed)
        with self._changed:
            for name, position in committed.items():
                if name.endswith(SHADOW_SUFFIX):
                    progress = self._rebuilds.get(name[: -len(SHADOW_SUFFIX)])
                    if progress is not None:
                        progress.position = position

    def _resync(self) -> None:
        """A checkpoint moved under us (reset, rebuilt or promoted elsewhere): decide again."""
        self.prepare()

    def _set_positions(self, positions: dict[str, int]) -> None:
        with self._changed:
            self._positions.update(positions)
            self._changed.notify_all()
