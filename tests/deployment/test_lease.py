"""Leases: the PostgreSQL advisory lock (one holder, freed with its session) and the guard
that runs a component only while its lease is held."""

from __future__ import annotations

import threading

import pytest

from adapters.lease import LeasedComponent, LocalLease, PostgresLease, lease_key


class FakeLease:
    """A lease the test grants and revokes."""

    def __init__(self, name: str = "scheduler") -> None:
        self.name = name
        self.grantable = threading.Event()
        self.revoked = threading.Event()
        self.held = False
        self.releases = 0

    def try_acquire(self) -> bool:
        if self.grantable.is_set() and not self.revoked.is_set():
            self.held = True
        return self.held

    def still_held(self) -> bool:
        if self.revoked.is_set():
            self.held = False
        return self.held

    def release(self) -> None:
        self.held = False
        self.releases += 1


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.changed = threading.Condition()

    def start(self) -> None:
        self._log("start")

    def stop(self) -> None:
        self._log("stop")

    def _log(self, call: str) -> None:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    def wait_for(self, calls: list[str]) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.calls == calls, timeout=10), self.calls


def test_the_component_runs_only_while_the_lease_is_held() -> None:
    lease, component = FakeLease(), Recorder()
    guard = LeasedComponent(lease, component, retry_interval=0.01, check_interval=0.01)
    guard.start()
    try:
        assert component.calls == [] and not guard.active  # standby: nothing runs
        lease.grantable.set()
        component.wait_for(["start"])
        lease.revoked.set()  # e.g. the session died: stop before anyone else leads
        component.wait_for(["start", "stop"])
        lease.revoked.clear()  # the lease comes back: lead again
        component.wait_for(["start", "stop", "start"])
    finally:
        guard.stop()
    assert component.calls == ["start", "stop", "start", "stop"]
    assert lease.held is False and guard.acquisitions == 2


def test_a_component_that_fails_to_start_gives_the_lease_back() -> None:
    lease = FakeLease()
    lease.grantable.set()
    failed = threading.Event()

    class Broken:
        def start(self) -> None:
            failed.set()
            raise RuntimeError("no cloud credentials")

        def stop(self) -> None:
            raise AssertionError("never started")

    guard = LeasedComponent(lease, Broken(), retry_interval=0.01, check_interval=0.01)
    guard.start()
    try:
        assert failed.wait(10)
    finally:
        guard.stop()
    assert lease.releases >= 1 and not guard.active


def test_local_lease_is_always_granted() -> None:
    lease = LocalLease("scheduler")
    assert lease.try_acquire() and lease.still_held()
    lease.release()
    assert not lease.still_held()


def test_lease_keys_are_stable_and_distinct() -> None:
    keys = {lease_key(role) for role in ("scheduler", "autoscaler", "workers", "instances", "dispatcher")}
    assert len(keys) == 5
    assert lease_key("scheduler") == lease_key("scheduler")
    assert all(-(2**63) <= key < 2**63 for key in keys)


@pytest.mark.postgres
def test_postgres_lease_has_one_holder_and_is_freed_with_its_session(postgres_url: str) -> None:
    name = f"test-{threading.get_ident()}"
    first, second = PostgresLease(postgres_url, name), PostgresLease(postgres_url, name)
    try:
        assert first.try_acquire() and first.still_held()
        assert not second.try_acquire() and not second.still_held()
        assert first.try_acquire()  # re-entrant for its holder, no second session
        first._conn.close()  # type: ignore[union-attr] - the holder's session dies
        assert not first.still_held()
        assert second.try_acquire() and second.still_held()
        assert not first.try_acquire()
        second.release()
        assert first.try_acquire()
    finally:
        first.release()
        second.release()


def _wait(predicate: object, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.postgres
def test_only_the_lease_holder_runs_the_instance_controller(tmp_path: object, postgres_database: str) -> None:
    """Two controllers at once could both import a lab for the same instance: with two
    ``instances`` replicas on one database exactly one runs it; when it goes, the other does."""
    from pathlib import Path

    from api.container import Container
    from api.settings import Settings

    def replica(name: str) -> Container:
        return Container(Settings(data_dir=Path(str(tmp_path)) / name, store="postgres", store_url=postgres_database,
                                  tokens="admin:adm", processors=True, lease_retry_seconds=0.2),
                         roles=frozenset({"instances"}))

    first, second = replica("a"), replica("b")
    first.start()
    second.start()
    try:
        def running() -> list[Container]:
            return [c for c in (first, second) if c.instance_controller and c.instance_controller.running]

        assert _wait(lambda: len(running()) == 1)
        leader = running()[0]
        standby = second if leader is first else first
        assert standby.lease_status() == {"instances": "standby"}
        assert leader.lease_status() == {"instances": "active"}
        leader.stop()  # releases the lease
        assert _wait(lambda: standby.instance_controller.running)  # type: ignore[union-attr]
        assert standby.lease_status() == {"instances": "active"}
    finally:
        first.stop()
        second.stop()
