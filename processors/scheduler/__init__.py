"""The scheduler process manager (SPEC §4): see ``scheduler.py`` and docs/scheduler.md."""

from processors.scheduler.lab_yaml import InstanceLabYaml, instance_lab_yaml_key
from processors.scheduler.records import decision_record, failure_summary
from processors.scheduler.scheduler import PassReport, Scheduler, fleet_candidates, worker_candidate
from processors.scheduler.settings import SchedulerSettings
from processors.scheduler.view import SchedulerView

__all__ = [
    "InstanceLabYaml",
    "PassReport",
    "Scheduler",
    "SchedulerSettings",
    "SchedulerView",
    "decision_record",
    "failure_summary",
    "fleet_candidates",
    "instance_lab_yaml_key",
    "worker_candidate",
]
