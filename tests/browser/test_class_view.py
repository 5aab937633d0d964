"""The class view in headless Chromium: seats as a grid that follows the seats' states live."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.lab_class import LabClass
from processors.commands.classes import ClassRequest
from processors.commands.instances import Caller
from tests.api.test_instances_support import bring_up
from tests.browser.conftest import LiveApp
from tests.browser.test_dashboard import WAIT_MS, sign_in

pytestmark = pytest.mark.browser


def test_the_class_view_shows_every_seat_and_follows_them_live(page, live_app: LiveApp) -> None:  # noqa: ANN001
    from playwright.sync_api import expect

    worker_id = live_app.running_worker()
    live_app.container.wait_for_position(live_app.container.store.max_position(), 5)
    owners = tuple(f"student-{i}" for i in range(6))
    booked = live_app.container.class_service.book(
        ClassRequest(definition="ccna-basic-routing", owners=owners, duration_minutes=60),
        Caller("instructor", "ins"), live_app.ctx("instructor:ins"))
    sign_in(page, f"{live_app.url}/classes/{booked.class_id}")
    page.wait_for_selector("#seats .seat", timeout=WAIT_MS)
    cells = page.locator("#seats .seat")
    assert cells.count() == 6
    assert [cells.nth(i).get_attribute("data-owner") for i in range(6)] == list(owners)
    assert {cells.nth(i).get_attribute("data-state") for i in range(6)} == {"SCHEDULED"}
    assert "6 seats" in page.locator("#class-summary").inner_text()
    assert page.locator("#seats .seat a[href^='/workers/']").first.get_attribute("title") == worker_id

    # one seat comes up on CML: its cell turns READY without a reload
    lab_class: LabClass = live_app.container.store.get(booked.class_id)
    first = lab_class.instance_ids[0]
    bring_up(live_app.container, first, advance=timedelta(0))
    page.wait_for_selector("#seats .seat[data-owner='student-0'][data-state='READY']", timeout=WAIT_MS)
    page.wait_for_selector("#class-counts [data-state='READY']", timeout=WAIT_MS)
    assert page.locator("#seats .seat[data-state='SCHEDULED']").count() == 5

    # the instructor cancels the class through the API: every cell turns TERMINATED
    response = page.request.delete(f"{live_app.url}/api/v1/classes/{booked.class_id}",
                                   headers={"Authorization": "Bearer ins"})
    assert response.status == 202
    expect(page.locator("#seats .seat[data-state='TERMINATED']")).to_have_count(6, timeout=WAIT_MS)
    assert "CANCELLED" in page.locator("#class-summary").inner_text()


def test_the_dashboard_reports_unowned_labs_and_quotas_live(page, live_app: LiveApp) -> None:  # noqa: ANN001
    from domain.lab_reconciliation import LabReconciliation
    from domain.quota import QuotaLimits

    worker_id = live_app.running_worker()
    live_app.container.quota_service.set("group", "ccna-autumn", QuotaLimits(2, 4.0), live_app.ctx("admin:admin"),
                                         members=["alice"])
    sign_in(page, live_app.url)
    page.wait_for_selector("#quotas [data-quota='group:ccna-autumn']", timeout=WAIT_MS)
    assert page.locator("#hygiene").inner_text() == "every CML lab belongs to an instance"
    # the reconciler finds a lab no instance owns: the panel shows it without a reload
    record = LabReconciliation.open(worker_id, live_app.ctx("system:lab-reconciler"))
    record.found("lab-by-hand", live_app.ctx("system:lab-reconciler"))
    live_app.container.store.save(record)
    page.wait_for_selector("#hygiene [data-lab='lab-by-hand']", timeout=WAIT_MS)
    assert "owned by no instance" in page.locator("#hygiene [data-lab='lab-by-hand']").inner_text()
