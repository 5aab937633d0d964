"""CML's error body, ``{"code", "description"}``, for every refusal the fake makes."""

from __future__ import annotations

from fastapi.responses import JSONResponse


class CmlHttpError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def cml_error(status: int, description: str) -> JSONResponse:
    return JSONResponse({"code": status, "description": description}, status_code=status)
