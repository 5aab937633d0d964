"""The baseline of ``scripts/bench api``: FastAPI and uvicorn with nothing of ours (one route)."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/bare")
def bare() -> dict[str, str]:
    return {"status": "ok"}
