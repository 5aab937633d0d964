"""Topics of aggregates that moved module, so events already stored still load.

The library stores each event with its class's topic (``module:Aggregate.Event``) and the
aggregate's topic inside the creating event; both are resolved when the log is read back.
A topic resolves through its longest registered prefix, so registering an aggregate's old
topic also covers the events nested in it.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from domain.cloud_reconciliation import CloudReconciliation
from domain.scaling_decision import ScalingDecision

# Old topic -> the class now. Never remove an entry: old events stay in the log forever.
MOVED_AGGREGATES: dict[str, type] = {
    "processors.autoscaler.decision:ScalingDecision": ScalingDecision,
    "processors.workers.audit:CloudReconciliation": CloudReconciliation,
}


def register_moved_topics() -> None:
    for old_topic, aggregate in MOVED_AGGREGATES.items():
        register_topic(old_topic, aggregate)
