"""Every module in this package that defines ``router`` is mounted under ``/api/v1``.

One module per resource (``templates.py``, ``definitions.py``, ``instances.py``, ...), so a
newcomer finds an endpoint by its resource name and adding one needs no central edit.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter, FastAPI

API_PREFIX = "/api/v1"


def include_all(app: FastAPI) -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            app.include_router(router, prefix=API_PREFIX)
