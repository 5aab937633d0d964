"""``/definitions``: publish into the artifact store, no-op republish, patch bumps, reads, deprecation, refusals."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from tests.api.test_templates_support import (
    send_as_admin,
    ADMIN,
    API,
    AUTH,
    assert_problem,
    caught_up,
    control_client,
    definition_body,
    head,
    sample_lab_yaml,
)

URL = f"{API}/definitions"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    with control_client(tmp_path) as pair:
        yield pair


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Container]]:
    """One app for the tests that only read or are refused (cheaper than one app per test)."""
    with control_client(tmp_path_factory.mktemp("shared")) as pair:
        yield pair


def publish(client: TestClient, **overrides: object) -> dict:
    response = client.post(URL, headers=ADMIN, json=definition_body(**overrides))
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_publish_stores_the_yaml_content_addressed(app: tuple[TestClient, Container], tmp_path: Path) -> None:
    client, container = app
    published = publish(client)
    text = sample_lab_yaml()
    sha = hashlib.sha256(text.encode()).hexdigest()
    assert published["created"] is True
    assert published["version"] == "1.0.0"
    assert published["lab_yaml_sha256"] == sha
    assert published["node_count"] == 2
    assert published["position"] == head(container)
    path = Path(url2pathname(urlparse(published["lab_yaml_uri"]).path))
    assert path == tmp_path / "artifacts" / "lab-yaml" / "ccna-basic-routing" / f"{sha}.yaml"
    assert path.read_text() == text

    read = client.get(f"{URL}/ccna-basic-routing/versions/1.0.0", headers=ADMIN, params=caught_up(container))
    assert read.status_code == 200
    version = read.json()
    assert version["lab_yaml_uri"] == published["lab_yaml_uri"]
    assert version["created_by"] == "admin:admin"
    assert version["port_template"][0] == {"name": "serial_1", "protocol": "telnet"}
    assert version["resource_requirements"]["ami"] == {"name_pattern": "CML-2.*", "min_version": "2.8.0"}
    lab = client.get(f"{URL}/ccna-basic-routing/versions/1.0.0/lab.yaml", headers=AUTH["grader"])
    assert lab.status_code == 200
    assert lab.headers["content-type"].startswith("application/yaml")
    assert lab.text == text


def test_same_yaml_again_is_a_no_op_and_a_change_bumps_the_patch(app: tuple[TestClient, Container]) -> None:
    client, container = app
    first = publish(client)
    before = head(container)
    again = client.post(URL, headers=ADMIN, json=definition_body())
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["version"] == "1.0.0"
    assert head(container) == before

    changed_yaml = sample_lab_yaml().replace("CCNA Basic Routing", "CCNA Basic Routing (rev b)")
    bumped = publish(client, lab_yaml=changed_yaml, version=None)
    assert bumped["version"] == "1.0.1"
    assert bumped["lab_yaml_sha256"] != first["lab_yaml_sha256"]
    explicit = publish(client, lab_yaml=changed_yaml, version="2.0.0", warm_pool_depth=0)
    assert explicit["version"] == "2.0.0"

    versions = client.get(f"{URL}/ccna-basic-routing/versions", headers=ADMIN, params=caught_up(container)).json()
    assert [v["version"] for v in versions["items"]] == ["1.0.0", "1.0.1", "2.0.0"]
    detail = client.get(f"{URL}/ccna-basic-routing", headers=AUTH["user"]).json()
    assert detail["latest_version"] == "2.0.0"
    assert detail["versions"] == ["1.0.0", "1.0.1", "2.0.0"]
    assert detail["latest"]["warm_pool_depth"] == 0
    # Both YAML texts stay readable through the versions that pin them.
    old = client.get(f"{URL}/ccna-basic-routing/versions/1.0.0/lab.yaml", headers=ADMIN)
    assert old.text == sample_lab_yaml()


def test_versions_page_in_semver_order_past_ten(app: tuple[TestClient, Container]) -> None:
    client, container = app
    for patch in range(12):
        publish(client, version=f"1.0.{patch}", lab_yaml=sample_lab_yaml() + f"\n# rev {patch}\n")
    seen: list[str] = []
    cursor = None
    while True:
        params = {**caught_up(container), "limit": 5, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{URL}/ccna-basic-routing/versions", headers=ADMIN, params=params).json()
        seen += [v["version"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"1.0.{p}" for p in range(12)]


def test_publish_from_an_artifact_uri_copies_it_content_addressed(app: tuple[TestClient, Container]) -> None:
    client, container = app
    text = sample_lab_yaml("ospf-multiarea")
    uri = container.artifacts.put("uploads/ospf.yaml", text.encode())
    body = definition_body("ospf-multiarea")
    body.pop("lab_yaml")
    for reference in (uri, "uploads/ospf.yaml"):
        response = client.post(URL, headers=ADMIN, json={**body, "lab_artifact_uri": reference})
        assert response.status_code in (200, 201), response.text
        published = response.json()
        assert published["lab_yaml_uri"] != uri
        assert "/lab-yaml/ospf-multiarea/" in published["lab_yaml_uri"]
        assert published["lab_yaml_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert published["created"] is False  # the second reference holds the same content


def test_list_filters_and_pages(app: tuple[TestClient, Container]) -> None:
    client, container = app
    publish(client)
    publish(client, name="ccna-basic-routing-b")
    publish(client, name="ospf-lab", license_affinity=["ENTERPRISE"])
    client.post(f"{URL}/ccna-basic-routing-b/deprecate", headers=ADMIN, json={"reason": "replaced"})

    def listed(**params: object) -> list[str]:
        response = client.get(URL, headers=AUTH["service"], params={**caught_up(container), **params})
        assert response.status_code == 200, response.text
        return [d["name"] for d in response.json()["items"]]

    assert listed() == ["ccna-basic-routing", "ccna-basic-routing-b", "ospf-lab"]
    assert listed(name_prefix="ccna") == ["ccna-basic-routing", "ccna-basic-routing-b"]
    assert listed(name_prefix="ccna", limit=1) == ["ccna-basic-routing"]
    assert listed(deprecated="true") == ["ccna-basic-routing-b"]
    assert listed(deprecated="false") == ["ccna-basic-routing", "ospf-lab"]
    assert listed(license="ENTERPRISE") == ["ccna-basic-routing", "ccna-basic-routing-b", "ospf-lab"]
    assert listed(license="PERSONAL") == ["ccna-basic-routing", "ccna-basic-routing-b"]
    assert listed(license="EVALUATION") == []

    first = client.get(URL, headers=ADMIN, params={"name_prefix": "ccna", "limit": 1}).json()
    assert first["next_cursor"]
    second = client.get(URL, headers=ADMIN,
                        params={"name_prefix": "ccna", "limit": 1, "cursor": first["next_cursor"]}).json()
    assert [d["name"] for d in second["items"]] == ["ccna-basic-routing-b"]
    assert second["next_cursor"] is None


def test_deprecated_definitions_take_no_new_versions(app: tuple[TestClient, Container]) -> None:
    client, container = app
    publish(client)
    deprecated = client.post(f"{URL}/ccna-basic-routing/deprecate", headers=ADMIN, json={"reason": "old"})
    assert deprecated.status_code == 202
    assert deprecated.json()["position"] == head(container)
    shown = client.get(f"{URL}/ccna-basic-routing", headers=ADMIN, params=caught_up(container)).json()
    assert shown["deprecated"] is True and shown["deprecation_reason"] == "old"
    before = head(container)
    changed = definition_body(lab_yaml=sample_lab_yaml() + "\n# new\n")
    assert_problem(client.post(URL, headers=ADMIN, json=changed), 409)
    assert_problem(client.post(f"{URL}/ccna-basic-routing/deprecate", headers=ADMIN), 409)
    assert head(container) == before


BIG = "x" * (1024 * 1024 + 1)


@pytest.mark.parametrize(
    "body, status, field",
    [
        ("{not json", 400, None),
        (definition_body(colour="red"), 422, "colour"),
        (definition_body(max_duration_minutes="90"), 422, "max_duration_minutes"),
        (definition_body(name="n" * 201), 422, "name"),
        (definition_body(name="Not A Name"), 422, "name"),
        (definition_body(lab_yaml="lab: [unclosed"), 422, "lab_yaml"),
        (definition_body(lab_yaml=BIG), 413, "lab_yaml"),
        (definition_body(lab_artifact_uri="uploads/x.yaml"), 422, "lab_yaml"),
        ({k: v for k, v in definition_body().items() if k != "lab_yaml"}, 422, "lab_yaml"),
        ({**{k: v for k, v in definition_body().items() if k != "lab_yaml"},
          "lab_artifact_uri": "uploads/missing.yaml"}, 422, "lab_artifact_uri"),
        ({**{k: v for k, v in definition_body().items() if k != "lab_yaml"},
          "lab_artifact_uri": "../../etc/passwd"}, 422, "lab_artifact_uri"),
        ({**{k: v for k, v in definition_body().items() if k != "lab_yaml"},
          "lab_artifact_uri": "s3://elsewhere/x.yaml"}, 422, "lab_artifact_uri"),
        (definition_body(port_template=[{"name": "serial_1", "protocol": "telnet"}]), 422, "port_template"),
        (definition_body(version="1.0"), 422, "version"),
        (definition_body(license_affinity=["GOLD"]), 422, "license_affinity"),
        (definition_body(resource_requirements={"cpu_cores": 2, "memory_gb": 4}), 422,
         "resource_requirements.storage_gb"),
        (definition_body(warm_pool_depth=-1), 422, "warm_pool_depth"),
    ],
)
def test_bad_input_is_a_problem_and_appends_nothing(
    shared: tuple[TestClient, Container], body: object, status: int, field: str | None
) -> None:
    client, container = shared
    before = head(container)
    response = send_as_admin(client, "POST", URL, body)
    assert_problem(response, status, field)
    assert head(container) == before


def test_a_lower_explicit_version_is_refused(app: tuple[TestClient, Container]) -> None:
    client, container = app
    publish(client, version="2.0.0")
    before = head(container)
    response = client.post(URL, headers=ADMIN, json=definition_body(version="1.5.0", lab_yaml=sample_lab_yaml() + "#"))
    assert_problem(response, 422, "version")
    assert head(container) == before


def test_an_oversized_body_is_refused_before_it_is_read(shared: tuple[TestClient, Container]) -> None:
    client, container = shared
    huge = b'{"name": "x", "lab_yaml": "' + b"y" * (4 * 1024 * 1024) + b'"}'
    response = client.post(URL, headers={**ADMIN, "content-type": "application/json"}, content=huge)
    assert_problem(response, 413, "lab_yaml")


@pytest.mark.parametrize(
    "path",
    ["/no-such", "/no-such/versions", "/no-such/versions/1.0.0", "/no-such/versions/1.0.0/lab.yaml",
     "/ccna-basic-routing/versions/9.9.9", "/ccna-basic-routing/versions/9.9.9/lab.yaml",
     "/ccna-basic-routing/versions/not-semver/lab.yaml", "/NOT_A_NAME/versions/1.0.0/lab.yaml"],
)
def test_unknown_names_and_versions_are_404(shared: tuple[TestClient, Container], path: str) -> None:
    client, container = shared
    publish(client)
    assert_problem(client.get(f"{URL}{path}", headers=ADMIN, params=caught_up(container)), 404)


def test_deprecating_an_unknown_definition_is_404(shared: tuple[TestClient, Container]) -> None:
    client, container = shared
    before = head(container)
    assert_problem(client.post(f"{URL}/no-such/deprecate", headers=ADMIN), 404)
    assert head(container) == before


@pytest.mark.parametrize(
    "role, method, path, status",
    [
        ("grader", "GET", URL, 200),
        ("user", "GET", URL, 200),
        ("service", "GET", f"{URL}/ccna-basic-routing", 200),
        ("instructor", "GET", f"{URL}/ccna-basic-routing/versions", 200),
        ("grader", "POST", URL, 403),
        ("instructor", "POST", URL, 403),
        ("user", "POST", f"{URL}/ccna-basic-routing/deprecate", 403),
        (None, "GET", URL, 401),
    ],
)
def test_roles(shared: tuple[TestClient, Container], role: str | None, method: str, path: str, status: int) -> None:
    client, container = shared
    publish(client)
    before = head(container)
    response = client.request(method, path, headers=AUTH.get(role or "", {}), params=caught_up(container),
                              json=definition_body(lab_yaml=sample_lab_yaml() + "#") if method == "POST" else None)
    assert response.status_code == status, response.text
    assert head(container) == before
