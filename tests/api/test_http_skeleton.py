"""The HTTP skeleton: health, readiness, problems, request ids, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.container import Container
from api.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, store="sqlite", tokens="admin:adm,user:usr:alice")
    with TestClient(create_app(Container(settings))) as test_client:
        yield test_client


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_store_and_projections(client: TestClient) -> None:
    body = client.get("/readyz").json()
    assert body["ready"] is True
    assert body["checks"]["event_store"]["ok"] is True


def test_unknown_route_is_a_problem(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    assert client.get("/healthz", headers={"x-request-id": "abc"}).headers["x-request-id"] == "abc"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 36


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    assert client.get("/openapi.json").json()["info"]["title"] == "Lablet Resource Manager"
    assert client.get("/docs").status_code == 200


def test_metrics_record_request_latency(client: TestClient) -> None:
    client.get("/healthz")
    text = client.get("/metrics").text
    assert 'lrm_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}' in text


def test_min_position_beyond_the_log_is_refused_at_once(client: TestClient) -> None:
    response = client.get(
        "/api/v1/worker-templates", params={"min_position": 10**9},
        headers={"Authorization": "Bearer adm"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "min_position"


def test_min_position_already_reached_answers_normally(client: TestClient) -> None:
    head = client.app.state.container.store.max_position()
    response = client.get(
        "/api/v1/worker-templates", params={"min_position": head},
        headers={"Authorization": "Bearer adm"},
    )
    assert response.status_code == 200
