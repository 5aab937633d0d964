"""The dashboard and the timeline in headless Chromium, against the real app over HTTP.

The story of a newcomer and an instructor: sign in with a token, see the fleet, watch a lab
requested through the API move through its states on the page without a reload, open its
timeline, step the replay, export it.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import httpx
import pytest

from tests.api.test_instances_support import bring_up, place
from tests.browser.conftest import INSTRUCTOR_TOKEN, LiveApp

pytestmark = pytest.mark.browser
WAIT_MS = 5000  # how long a live update may take before the test fails (events arrive in < 1 s)


def sign_in(page, url: str, token: str = INSTRUCTOR_TOKEN) -> None:  # noqa: ANN001
    page.goto(url)
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("body[data-loaded=true]", timeout=WAIT_MS)


def request_instance(app: LiveApp, **body: object) -> dict:
    body.setdefault("definition", "ccna-basic-routing")
    response = httpx.post(f"{app.url}/api/v1/instances", json=body, headers={"Authorization": "Bearer usr"})
    assert response.status_code == 201, response.text
    return response.json()


def row_state(page, instance_id: str) -> str:  # noqa: ANN001
    return page.get_attribute(f'#instances tr[data-id="{instance_id}"]', "data-state", timeout=WAIT_MS)


def wait_for_row_state(page, instance_id: str, state: str) -> None:  # noqa: ANN001
    page.wait_for_selector(f'#instances tr[data-id="{instance_id}"][data-state="{state}"]', timeout=WAIT_MS)


def test_the_page_asks_for_a_token_and_refuses_an_unknown_one(page, live_app: LiveApp) -> None:  # noqa: ANN001
    page.goto(live_app.url)
    assert page.is_visible("#login")
    assert not page.is_visible("#app")
    page.fill("#token", "not-a-token")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:has-text('Unknown token')", timeout=WAIT_MS)
    assert page.evaluate("sessionStorage.getItem('lrm.token')") is None


def test_a_lab_moves_through_its_states_live_then_its_timeline_replays_and_exports(
    page, live_app: LiveApp  # noqa: ANN001
) -> None:
    worker_id = live_app.running_worker()
    page.goto(live_app.url)
    badge_colour = "document.getElementById('live') && getComputedStyle(document.getElementById('live')).backgroundColor"
    offline_colour = page.evaluate(badge_colour)
    assert page.inner_text("#live") == "offline"
    sign_in(page, live_app.url)

    # The fleet: the worker's card with its state and capacity bars; the stream is live.
    card = page.wait_for_selector(f'.card[data-worker-id="{worker_id}"]', timeout=WAIT_MS)
    assert "RUNNING" in card.inner_text()
    assert len(card.query_selector_all(".bar")) == 4
    page.wait_for_selector("#live.on", timeout=WAIT_MS)
    assert page.evaluate(badge_colour) != offline_colour  # offline does not look live
    page.evaluate("window.__notReloaded = true")

    # A user requests a lab through the API: its row appears, PENDING, and it is queued.
    requested_at = live_app.clock.now()
    requested = request_instance(live_app, duration_minutes=60, reservation_id="exam-7")
    instance_id = requested["id"]
    wait_for_row_state(page, instance_id, "PENDING")
    page.wait_for_selector(f'#queue li[data-instance-id="{instance_id}"]', timeout=WAIT_MS)

    # The scheduler places it: the row turns SCHEDULED, the queue empties, the Gantt shows it.
    live_app.clock.advance(timedelta(minutes=1))
    place(live_app.container, instance_id, worker_id)
    wait_for_row_state(page, instance_id, "SCHEDULED")
    page.wait_for_selector(f'#gantt rect[data-instance-id="{instance_id}"]', timeout=WAIT_MS)
    page.wait_for_selector(f'#queue li[data-instance-id="{instance_id}"]', state="detached", timeout=WAIT_MS)
    page.wait_for_selector(f'.card[data-worker-id="{worker_id}"] .bar-value:has-text("3/")', timeout=WAIT_MS)

    # The controller brings it up: READY, and the count by state follows.
    bring_up(live_app.container, instance_id)
    wait_for_row_state(page, instance_id, "READY")
    assert page.inner_text('#state-counts .chip[data-state="READY"]') == "READY 1"
    assert page.evaluate("window.__notReloaded") is True, "the page was reloaded"

    # The filter narrows the table.
    page.fill("#instance-filter", "nobody-has-this")
    assert page.query_selector(f'#instances tr[data-id="{instance_id}"]') is None
    page.fill("#instance-filter", "exam-7")
    assert page.query_selector(f'#instances tr[data-id="{instance_id}"]') is not None

    # The timeline: every event in order, with actor, cause and a sentence.
    page.click(f'#instances tr[data-id="{instance_id}"] a')
    page.wait_for_selector("body[data-loaded=true]", timeout=WAIT_MS)
    rows = page.query_selector_all("#events tbody tr")
    types = [row.get_attribute("data-type") for row in rows]
    assert types[0] == "InstanceRequested"
    assert {"CapacityReserved", "InstanceScheduled", "InstanceReady"} <= set(types)
    first = rows[0].inner_text()
    assert "user:alice" in first and "Requested ccna-basic-routing" in first
    assert page.get_attribute("#replay-state", "data-state") == "READY"  # starts at the end

    # Replay: back to the start, then step forward until the instance is scheduled.
    page.click("#first")
    assert page.get_attribute("#replay-state", "data-state") == "PENDING"
    page.wait_for_selector("#replay-fields dd:has-text('alice')", timeout=WAIT_MS)  # the record as of then
    states = []
    for _ in range(len(rows) - 1):
        page.click("#next")
        states.append(page.get_attribute("#replay-state", "data-state"))
    assert states[-1] == "READY"
    assert states.index("SCHEDULED") < states.index("INSTANTIATING") < states.index("READY")
    page.fill("#slider", "0")  # the slider goes back too
    assert page.inner_text("#step-label") == f"step 1 / {len(rows)}"
    assert len(page.query_selector_all("#events tbody tr.future")) == len(rows) - 1  # greyed: not yet happened

    # The state at any moment: between two steps it is the state after the earlier one.
    for moment, state in ((requested_at + timedelta(seconds=30), "PENDING"),
                          (requested_at + timedelta(seconds=90), "SCHEDULED"),
                          (requested_at + timedelta(hours=1), "READY")):
        page.fill("#at", moment.strftime("%Y-%m-%dT%H:%M:%S"))
        page.click("#at-form button")
        assert page.get_attribute("#replay-state", "data-state") == state, moment
    page.fill("#at", (requested_at - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#at-form button")
    assert page.inner_text("#replay-state") == "not yet requested"

    # Export: CSV and JSON carry every step.
    with page.expect_download() as download:
        page.click("#export-csv")
    table = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [r["type"] for r in table] == types
    assert table[0]["actor"] == "user:alice" and table[-1]["state"] == "READY"
    with page.expect_download() as download:
        page.click("#export-json")
    exported = json.loads(download.value.path().read_text())
    assert exported["subject"] == instance_id and len(exported["events"]) == len(types)


def test_the_timeline_follows_new_events_live(page, live_app: LiveApp) -> None:  # noqa: ANN001
    worker_id = live_app.running_worker()
    instance_id = request_instance(live_app, duration_minutes=30)["id"]
    sign_in(page, f"{live_app.url}/instances/{instance_id}")
    page.wait_for_selector("#live.on", timeout=WAIT_MS)
    assert page.get_attribute("#replay-state", "data-state") == "PENDING"
    place(live_app.container, instance_id, worker_id)
    page.wait_for_selector('#replay-state[data-state="SCHEDULED"]', timeout=WAIT_MS)
    page.wait_for_selector('#events tr[data-type="CapacityReserved"]', timeout=WAIT_MS)


def test_the_worker_timeline_replays_what_it_held(page, live_app: LiveApp) -> None:  # noqa: ANN001
    worker_id = live_app.running_worker()
    instance_id = request_instance(live_app, duration_minutes=30)["id"]
    place(live_app.container, instance_id, worker_id)
    sign_in(page, f"{live_app.url}/workers/{worker_id}")
    types = [r.get_attribute("data-type") for r in page.query_selector_all("#events tbody tr")]
    assert types == ["WorkerRequested", "WorkerProvisioningStarted", "WorkerReady", "CapacityReserved"]
    assert page.get_attribute("#replay-state", "data-state") == "RUNNING"
    assert instance_id in page.inner_text("#replay-fields") or page.query_selector(
        f'#replay-fields a[href="/instances/{instance_id}"]')
    page.click("#first")
    assert page.get_attribute("#replay-state", "data-state") == "PENDING"
    assert "nothing" in page.inner_text("#replay-fields")


def test_search_finds_labs_by_owner_and_reservation(page, live_app: LiveApp) -> None:  # noqa: ANN001
    mine = request_instance(live_app, duration_minutes=30, reservation_id="exam-7")["id"]
    other = request_instance(live_app, duration_minutes=30, reservation_id="exam-8")["id"]
    sign_in(page, f"{live_app.url}/search?owner_id=alice&reservation_id=exam-7")
    page.wait_for_selector(f'#results tr[data-id="{mine}"]', timeout=WAIT_MS)
    assert page.query_selector(f'#results tr[data-id="{other}"]') is None
    assert page.inner_text("#search-note").startswith("1 instance")


def test_a_user_sees_only_their_labs_and_polls(browser, live_app: LiveApp) -> None:  # noqa: ANN001
    mine = request_instance(live_app, duration_minutes=30)["id"]
    bobs = httpx.post(f"{live_app.url}/api/v1/instances", json={"definition": "ccna-basic-routing"},
                      headers={"Authorization": "Bearer usr2"}).json()["id"]
    context = browser.new_context()
    try:
        page = context.new_page()
        sign_in(page, live_app.url, "usr")
        page.wait_for_selector(f'#instances tr[data-id="{mine}"]', timeout=WAIT_MS)
        assert page.query_selector(f'#instances tr[data-id="{bobs}"]') is None
        assert "admin or instructor" in page.inner_text("#fleet")
        assert "admin or instructor" in page.inner_text("#scaling-decisions")
        page.wait_for_selector("#live.polling", timeout=WAIT_MS)  # the log is not theirs to follow
    finally:
        context.close()



def test_a_burst_of_requests_all_reach_the_page(page, live_app: LiveApp) -> None:  # noqa: ANN001
    sign_in(page, live_app.url)
    page.wait_for_selector("#live.on", timeout=WAIT_MS)
    ids = [request_instance(live_app, duration_minutes=30, reservation_id=f"wave-{n}")["id"] for n in range(15)]
    for instance_id in ids:
        wait_for_row_state(page, instance_id, "PENDING")
    page.wait_for_selector('#state-counts .chip[data-state="PENDING"]:has-text("PENDING 15")', timeout=WAIT_MS)
    page.wait_for_selector('#queue-count:text-is("15")', timeout=WAIT_MS)  # its own request: may land a bit later
