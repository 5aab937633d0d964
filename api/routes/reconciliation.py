"""``/reconciliation``: what the lab reconciler found on each live worker (admin, instructor).

``orphans``: CML labs no instance owns, with when they were first seen and when they are
removed (first seen + ``LRM_ORPHAN_LAB_GRACE_MINUTES``); ``vanished``: live instances whose
CML lab is gone. Read from the workers' ``LabReconciliation`` streams (processors/reconciler).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.auth import Principal, Role, require
from api.deps import get_container
from api.schemas.instances import problems
from domain.lab_reconciliation import LabReconciliation
from processors.aggregates import load_or_none

router = APIRouter(prefix="/reconciliation", tags=["workers"])
Auditor = Annotated[Principal, Depends(require(Role.INSTRUCTOR))]


@router.get("", responses=problems(401, 403), summary="Unowned CML labs and vanished labs, per live worker")
def reconciliation(request: Request, _: Auditor) -> dict[str, Any]:
    container = get_container(request)
    grace = timedelta(minutes=container.settings.orphan_lab_grace_minutes)
    workers = []
    for worker_id in sorted(container.live_worker_ids()):
        record = load_or_none(container.store, LabReconciliation.stream_id_for(worker_id), LabReconciliation)
        if record is None or not (record.orphans or record.vanished):
            continue
        workers.append({
            "worker_id": worker_id,
            "orphans": [{"lab_id": lab_id, "first_seen": seen, "removal_due": seen + grace}
                        for lab_id, seen in sorted(record.orphans.items())],
            "vanished": [{"instance_id": i, "lab_id": lab} for i, lab in sorted(record.vanished.items())],
        })
    return {"grace_minutes": container.settings.orphan_lab_grace_minutes, "workers": workers}
