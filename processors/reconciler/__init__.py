"""The lab reconciler (a clean fleet): see ``labs.py``."""

from processors.reconciler.labs import LabReconciler, LabReconcilerReport

__all__ = ["LabReconciler", "LabReconcilerReport"]
