"""Run a component (anything with ``start()``/``stop()``) only while a lease is held.

A background thread tries the lease every ``retry_interval``; once held it starts the
component and checks the lease every ``check_interval``. When the lease is lost (the
session died) the component is stopped first and the lease tried again, so a replica that
lost its database connection does not keep acting next to the new holder.

Failover time after the holder dies is at most ``retry_interval`` (plus the server's
noticing the dead session: immediate when the process is killed).
"""

from __future__ import annotations

import logging
from typing import Protocol

from processors.daemon import DaemonThread
from processors.ports.lease import Lease

log = logging.getLogger(__name__)


class Component(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class LeasedComponent:
    def __init__(
        self,
        lease: Lease,
        component: Component,
        *,
        retry_interval: float = 2.0,
        check_interval: float = 2.0,
        on_change: object | None = None,
    ) -> None:
        self.lease = lease
        self.component = component
        self.retry_interval = retry_interval
        self.check_interval = check_interval
        self._on_change = on_change
        self._daemon = DaemonThread(f"lease-{lease.name}", self._main)
        self._active = False
        self.acquisitions = 0

    @property
    def name(self) -> str:
        return self.lease.name

    @property
    def active(self) -> bool:
        """This replica holds the lease and runs the component."""
        return self._active

    @property
    def running(self) -> bool:
        return self._daemon.running

    def start(self) -> None:
        self._daemon.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._daemon.stop(timeout)

    def _main(self) -> None:
        try:
            while not self._daemon.stopping.is_set():
                if not self._try_lead():
                    self._daemon.stopping.wait(self.retry_interval)
                    continue
                while not self._daemon.stopping.wait(self.check_interval):
                    if not self.lease.still_held():
                        log.warning("lease %s lost: stopping %s", self.name, self.name)
                        break
                self._step_down()
        finally:
            if self._active:
                self._step_down()

    def _try_lead(self) -> bool:
        try:
            if not self.lease.try_acquire():
                return False
        except Exception:  # noqa: BLE001 - an unreachable database: try again later
            log.exception("lease %s: acquiring failed", self.name)
            return False
        self.acquisitions += 1
        log.info("lease %s acquired: starting %s", self.name, self.name)
        try:
            self.component.start()
        except Exception:  # noqa: BLE001 - give the lease to a healthier replica
            log.exception("lease %s: component failed to start", self.name)
            self.lease.release()
            return False
        self._active = True
        self._notify()
        return True

    def _step_down(self) -> None:
        try:
            self.component.stop()
        except Exception:  # noqa: BLE001 - release the lease anyway
            log.exception("lease %s: component failed to stop", self.name)
        finally:
            self._active = False
            self.lease.release()
            self._notify()

    def _notify(self) -> None:
        if callable(self._on_change):
            self._on_change(self.name, self._active)
