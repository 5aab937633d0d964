"""ETag on templates, definitions and subscriptions; If-Match on edits: 412 stale, 428 missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.container import Container
from tests.api.test_instances_support import ADMIN, API, assert_problem, by_callers, caught_up, head, publish
from tests.api.test_templates_support import control_client, template_body

Client = tuple[TestClient, Container]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Client]:
    with control_client(tmp_path, require_if_match=True) as pair:
        yield pair


def read(client: TestClient, container: Container, path: str) -> str:
    response = client.get(path, params=caught_up(container), headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def test_two_admins_editing_one_template_cannot_lose_each_others_change(app: Client) -> None:
    client, container = app
    url = f"{API}/worker-templates/lab-small"
    assert client.put(url, json=template_body(), headers=ADMIN).status_code == 201  # creating needs no tag
    tag = read(client, container, url)
    first = client.put(url, json=template_body(hourly_cost=4.5), headers={**ADMIN, "If-Match": tag})
    assert first.status_code == 202
    before = head(container)
    second = client.put(url, json=template_body(description="other admin"), headers={**ADMIN, "If-Match": tag})
    assert_problem(second, 412)
    assert "read it again" in second.json()["detail"]
    assert by_callers(container, before) == []
    fresh = read(client, container, url)
    assert fresh != tag
    assert client.put(url, json=template_body(description="other admin"),
                      headers={**ADMIN, "If-Match": fresh}).status_code == 202


def test_an_edit_without_if_match_is_428_and_star_overwrites(app: Client) -> None:
    client, container = app
    url = f"{API}/worker-templates/lab-small"
    client.put(url, json=template_body(), headers=ADMIN)
    before = head(container)
    assert_problem(client.put(url, json=template_body(hourly_cost=5.0), headers=ADMIN), 428)
    assert_problem(client.delete(url, headers=ADMIN), 428)
    assert_problem(client.put(url, json=template_body(), headers={**ADMIN, "If-Match": "garbage"}), 412)
    assert by_callers(container, before) == []
    assert client.put(url, json=template_body(hourly_cost=5.0), headers={**ADMIN, "If-Match": "*"}).status_code == 202
    stale = '"0"'  # the version before the overwrite
    assert_problem(client.delete(url, headers={**ADMIN, "If-Match": stale}), 412)
    assert client.delete(url, headers={**ADMIN, "If-Match": read(client, container, url)}).status_code == 202


def test_definitions_and_subscriptions_carry_an_etag(app: Client) -> None:
    client, container = app
    publish(client)
    tag = read(client, container, f"{API}/definitions/ccna-basic-routing")
    assert tag.strip('"').isdigit()
    # created through the service without a receiver to handshake with (tests/cloudevents does that)
    from domain.context import CommandContext
    from adapters.webhooks.signing import generate_secret
    from domain.subscription import WebhookSubscription

    ctx = CommandContext(at=container.clock.now(), actor="admin:admin")
    subscription = WebhookSubscription.create(ctx, url="https://grader.example/hook", secret=generate_secret(), owner="admin",
                                              types=(), subjects=(), mode="structured", auth_token="")
    container.store.save(subscription)
    sub = f"{API}/subscriptions/{subscription.id}"
    sub_tag = read(client, container, sub)
    assert_problem(client.delete(sub, headers=ADMIN), 428)
    assert_problem(client.delete(sub, headers={**ADMIN, "If-Match": '"99"'}), 412)
    assert client.delete(sub, headers={**ADMIN, "If-Match": sub_tag}).status_code == 202
