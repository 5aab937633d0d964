"""The overrun watcher (SPEC §4 hold window): see ``watcher.py``."""

from processors.overrun.watcher import OverrunSettings, OverrunWatcher

__all__ = ["OverrunSettings", "OverrunWatcher"]
