"""Page routes (``/``, ``/instances/{id}``, ``/workers/{id}``, ``/classes/{id}``, ``/search``) and their static files.

The pages carry no data: they are shells that the browser fills from ``/api/v1`` with the
token kept in ``sessionStorage``. So they are public, cacheable, and no page can leak what
its visitor's role may not read. A strict Content-Security-Policy applies: only this
origin's scripts, styles and connections (no CDN, no inline script).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.problems import ApiProblem

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".txt": "text/plain"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
router = APIRouter(include_in_schema=False)

StreamId = Annotated[str, PathParam(min_length=1, max_length=200)]


def _page(name: str, **context: object) -> HTMLResponse:
    html = templates.get_template(name).render(**context)
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                       "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})


@router.get("/", response_class=HTMLResponse)
def dashboard() -> HTMLResponse:
    return _page("dashboard.html", page="dashboard")


@router.get("/instances/{instance_id}", response_class=HTMLResponse)
def instance_timeline(instance_id: StreamId) -> HTMLResponse:
    return _page("timeline.html", page="timeline", kind="instance", stream_id=instance_id)


@router.get("/workers/{worker_id}", response_class=HTMLResponse)
def worker_timeline(worker_id: StreamId) -> HTMLResponse:
    return _page("timeline.html", page="timeline", kind="worker", stream_id=worker_id)


@router.get("/classes/{class_id}", response_class=HTMLResponse)
def class_view(class_id: StreamId) -> HTMLResponse:
    return _page("class.html", page="class", class_id=class_id)


@router.get("/search", response_class=HTMLResponse)
def search() -> HTMLResponse:
    return _page("search.html", page="search")


@router.get("/static/{name}")
def static(name: Annotated[str, PathParam(max_length=100)]) -> FileResponse:
    # Only plain file names of this directory: no sub-paths, no dot-files, known types.
    path = STATIC_DIR / name
    if "/" in name or "\\" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise ApiProblem(404, "Not found", f"no static file {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix],
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
