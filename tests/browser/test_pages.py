"""The page routes without a browser: public shells, a strict CSP, static files and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.clock import VirtualClock
from api.app import create_app
from api.container import Container
from api.settings import Settings
from tests.api.test_instances_support import NOW, TOKENS


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    container = Container(Settings(data_dir=tmp_path_factory.mktemp("pages"), store="sqlite", tokens=TOKENS),
                          clock=VirtualClock(NOW))
    with TestClient(create_app(container)) as client:
        yield client


@pytest.mark.parametrize(("path", "script"), [
    ("/", "/static/dashboard.js"),
    ("/instances/LabletInstance-0b6d2f4f-d76c-5dd2-b87c-73ddbfb7e6c8", "/static/timeline.js"),
    ("/workers/Worker-a9f1aaa6-fbc7-54bf-bcee-d53b62a4713a", "/static/timeline.js"),
    ("/search", "/static/search.js"),
])
def test_pages_are_public_shells_under_a_strict_policy(client: TestClient, path: str, script: str) -> None:
    response = client.get(path)  # no token: the page holds no data, the API calls carry the token
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "unsafe-inline" not in policy
    assert f'<script src="{script}" defer></script>' in response.text
    assert 'id="login-form"' in response.text
    assert "<script>" not in response.text  # no inline script (the policy would refuse it)


def test_a_timeline_page_escapes_the_id_it_shows(client: TestClient) -> None:
    response = client.get('/instances/"><img src=x onerror=alert(1)>')
    assert response.status_code == 200
    assert "<img src=x" not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    assert 'data-stream-id="&#34;&gt;&lt;img' in response.text


@pytest.mark.parametrize(("name", "media_type"), [
    ("lrm.js", "text/javascript"), ("dashboard.js", "text/javascript"), ("timeline.js", "text/javascript"),
    ("search.js", "text/javascript"), ("lrm.css", "text/css"),
])
def test_static_files_are_served_with_their_type(client: TestClient, name: str, media_type: str) -> None:
    response = client.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", ["routes.py", "..%2Froutes.py", "..%2F..%2Fsettings.py", ".hidden.js", "nope.js",
                                  "%2Fetc%2Fpasswd"])
def test_nothing_else_is_served_as_static(client: TestClient, name: str) -> None:
    assert client.get(f"/static/{name}").status_code == 404


def test_the_pages_stay_out_of_the_api_reference(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith("/api/v1") and p not in ("/healthz", "/readyz")]


def test_every_static_file_is_referenced_or_a_licence() -> None:
    static = Path(__file__).resolve().parents[2] / "api" / "web" / "static"
    templates = "".join(p.read_text() for p in (static.parent / "templates").glob("*.html"))
    for path in static.iterdir():
        assert f"/static/{path.name}" in templates, f"{path.name} is not used by any page"
