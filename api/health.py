"""Liveness and readiness: /healthz answers while the process runs; /readyz checks the store and lag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: event store reachable and projection lag")
def readyz(request: Request) -> JSONResponse:
    container = request.app.state.container
    report: dict[str, Any] = container.readiness()
    return JSONResponse(report, status_code=200 if report["ready"] else 503)
