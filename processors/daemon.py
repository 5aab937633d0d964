"""``DaemonThread`` for adapters, which may import processors but not projections (SPEC §2)."""

from projections.daemon import DaemonThread

__all__ = ["DaemonThread"]
