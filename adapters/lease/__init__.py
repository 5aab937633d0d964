"""Leases for processor roles (``processors.ports.lease.Lease``).

- ``PostgresLease``: ``pg_try_advisory_lock`` on a dedicated connection; held as long as
  that connection lives, so a killed holder frees it at once;
- ``LocalLease``: always granted, for single-process stores (SQLite, memory);
- ``LeasedComponent``: runs a start/stop component only while its lease is held.
"""

from adapters.lease.guard import LeasedComponent
from adapters.lease.local import LocalLease
from adapters.lease.postgres import PostgresLease, lease_key

__all__ = ["LeasedComponent", "LocalLease", "PostgresLease", "lease_key"]
