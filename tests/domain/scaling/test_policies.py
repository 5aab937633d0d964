"""Baselines (reactive, static), plan assembly, payload and determinism."""

from __future__ import annotations

import json
import random

import pytest

from domain.errors import InvalidInput
from domain.scaling import POLICY_NAMES, ScalingSettings, plan, record_inputs, replay
from tests.domain.scaling.builders import at, booking, kinds, launched, personal, worker

TPL = personal()


# -- reactive ------------------------------------------------------------------


def test_reactive_ignores_future_demand() -> None:
    result = plan(at(0), [], [TPL], [booking(f"a{k}", 60) for k in range(30)], policy="reactive")
    assert kinds(result) == ["NoAction"]


def test_reactive_launches_one_worker_for_due_demand() -> None:
    result = plan(at(50), [], [TPL], [booking(f"a{k}", 60) for k in range(30)], policy="reactive")
    assert launched(result) == {"personal-standard": 1}


def test_reactive_waits_for_a_booting_worker() -> None:
    fleet = [worker("p1", "PROVISIONING", ready_at=at(70), holds=[booking(f"x{k}", 60, queued=False) for k in range(10)])]
    result = plan(at(50), fleet, [TPL], [booking("a", 40)], policy="reactive")
    assert launched(result) == {}


def test_reactive_restarts_a_stopped_worker_first() -> None:
    result = plan(at(50), [worker("s1", "STOPPED")], [TPL], [booking("a", 60)], policy="reactive")
    assert [a.worker_id for a in result.restarts] == ["s1"] and launched(result) == {}


def test_reactive_restarts_a_stopped_worker_when_its_hold_begins() -> None:
    fleet = [worker("s1", "STOPPED", holds=[booking("x", 60, queued=False)])]
    assert plan(at(40), fleet, [TPL], [], policy="reactive").restarts == []
    assert [a.worker_id for a in plan(at(46), fleet, [TPL], [], policy="reactive").restarts] == ["s1"]


def test_reactive_stops_a_worker_idle_now_even_with_holds_soon() -> None:
    fleet = [worker("w1", holds=[booking("x", 60, queued=False)])]
    assert kinds(plan(at(20), fleet, [TPL], [], policy="reactive")) == ["StopWorker"]
    assert kinds(plan(at(20), fleet, [TPL], [], policy="default")) == ["NoAction"]


def test_reactive_never_stops_an_active_lab() -> None:
    fleet = [worker("w1", active=["lab"])]
    assert kinds(plan(at(10), fleet, [TPL], [], policy="reactive")) == ["NoAction"]


# -- static --------------------------------------------------------------------


def test_static_launches_for_the_whole_demand_at_once() -> None:
    demand = [booking(f"a{k}", 60 * 6, 60) for k in range(25)] + [booking(f"b{k}", 60, 30) for k in range(5)]
    result = plan(at(0), [], [TPL], demand, policy="static")
    assert launched(result) == {"personal-standard": 3}
    assert result.deferred == ()


def test_static_never_scales_down() -> None:
    fleet = [worker("w1"), worker("d1", "DRAINING", since=at(-1000)), worker("s1", "STOPPED", since=at(-5000))]
    assert kinds(plan(at(0), fleet, [TPL], [], policy="static")) == ["NoAction"]


# -- plan ----------------------------------------------------------------------


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(InvalidInput):
        plan(at(0), [], [TPL], [], policy="clairvoyant")


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_payload_is_json_and_says_why(policy: str) -> None:
    fleet = [worker("w1"), worker("s1", "STOPPED", since=at(-3000)), worker("d1", "DRAINING", since=at(-500), active=["z"])]
    demand = [booking(f"a{k}", 30, 60) for k in range(25)] + [booking("late", 5)]
    result = plan(at(0), fleet, [TPL], demand, ScalingSettings(min_warm={"personal-standard": 1}), policy=policy)
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["policy"] == policy and payload["at"] == at(0).isoformat()
    assert {"demand", "capacity", "horizon", "per_template", "settings"} <= set(payload["inputs"])
    assert payload["inputs"]["demand"]["queued"] == 26
    assert all(a["reason"] for a in payload["actions"])


def test_same_inputs_in_any_order_give_an_equal_plan() -> None:
    fleet = [worker(f"w{n}", holds=[booking(f"x{n}", 30 + n, 60, queued=False)]) for n in range(5)]
    fleet += [worker("s1", "STOPPED"), worker("p1", "PENDING", ready_at=at(30))]
    demand = [booking(f"a{k}", 40 + (k % 7) * 10, 45) for k in range(60)]
    reference = plan(at(20), fleet, [TPL, personal("other", cost=5)], demand)
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(fleet)
        rng.shuffle(demand)
        assert plan(at(20), fleet, [personal("other", cost=5), TPL], demand) == reference


def test_next_decision_at_points_at_the_next_change() -> None:
    fleet = [worker("w1", holds=[booking("x", 60, 30, queued=False)])]
    result = plan(at(0), fleet, [TPL], [])
    # the hold (08:45-09:30) begins within the grace period at 08:15
    assert result.next_decision_at == at(15)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_recorded_inputs_replay_to_an_equal_plan(policy: str) -> None:
    fleet = [
        worker("w1", holds=[booking("x", 30, 60, queued=False)], active=["x"]),
        worker("s1", "STOPPED", since=at(-3000)),
        worker("p1", "PROVISIONING", ready_at=at(10)),
    ]
    demand = [booking(f"a{k}", 40, 60) for k in range(25)] + [booking("asap", 0, asap=True), booking("b", 90, queued=False)]
    config = ScalingSettings(min_warm={"personal-standard": 1}, stop_between_reservations=True)
    record = json.loads(json.dumps(record_inputs(at(20), fleet, [TPL], demand, config)))
    assert replay(record, policy) == plan(at(20), fleet, [TPL], demand, config, policy=policy)


def test_template_offer_from_a_worker_template_spec() -> None:
    from domain.resources import Resources
    from domain.scaling import TemplateOffer
    from domain.worker_template import PortRange, WorkerTemplateSpec

    spec = WorkerTemplateSpec(
        name="personal-standard", instance_type="m5zn.metal", capacity=Resources(48, 192, 500),
        license_type="PERSONAL", max_nodes=20, ami_pattern="CML-2.9.*", region="eu-west-1",
        port_range=PortRange(2000, 2999), hourly_cost=4.5, startup_minutes=18,
    )
    offer = TemplateOffer.from_spec(spec)
    assert (offer.name, offer.max_nodes, offer.license_type, offer.startup_minutes, offer.restart_minutes) == (
        "personal-standard", 20, "PERSONAL", 18, 5
    )
    assert offer.hourly_cost == 4.5 and offer.nested_virt and offer.ami_pattern == "CML-2.9.*"
