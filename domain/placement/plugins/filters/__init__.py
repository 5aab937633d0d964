"""Filter plugins: each decides one worker/request pair and says why it rejects.

Exported in the default order, cheap to expensive: the first three read only the
candidate's own facts, the last three read its reservation ledger.
"""

from domain.placement.plugins.filters.license_affinity import LicenseAffinity
from domain.placement.plugins.filters.nested_virt_and_ami import NestedVirtAndAmi
from domain.placement.plugins.filters.node_limit import NodeLimit
from domain.placement.plugins.filters.ports_over_window import PortsOverWindow
from domain.placement.plugins.filters.resources_over_window import ResourcesOverWindow
from domain.placement.plugins.filters.worker_state import WorkerState

__all__ = [
    "WorkerState",
    "LicenseAffinity",
    "NestedVirtAndAmi",
    "NodeLimit",
    "ResourcesOverWindow",
    "PortsOverWindow",
]
