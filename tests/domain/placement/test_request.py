"""PlacementRequest: when a worker must be ready, and its recorded form."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain.placement import PlacementRequest
from tests.domain.placement.builders import HOUR, MINUTE, T0, request


@pytest.mark.parametrize(
    ("overrides", "ready_by"),
    [
        ({}, T0),  # booking at 09:15, lead 15 min
        ({"instantiation_lead": 30 * MINUTE, "timeslot_start": T0 + HOUR}, T0 + 30 * MINUTE),
        ({"timeslot_start": None}, T0),  # ASAP: ready at the start of the hold
        ({"timeslot_start": T0 - HOUR}, T0),  # a past timeslot is ASAP
    ],
)
def test_ready_by(overrides, ready_by):
    assert request(**overrides).ready_by == ready_by


def test_round_trips_through_json():
    original = request(license_affinity=frozenset({"ENTERPRISE", "PERSONAL"}), nested_virt=True)
    assert PlacementRequest.from_dict(json.loads(json.dumps(original.to_dict()))) == original
    asap = request(timeslot_start=None, ami_name_pattern=None, ami_min_version=None, port_names=())
    assert PlacementRequest.from_dict(json.loads(json.dumps(asap.to_dict()))) == asap


def test_collections_are_normalised():
    made = request(license_affinity={"PERSONAL"}, port_names=["serial_1"])
    assert made.license_affinity == frozenset({"PERSONAL"})
    assert made.port_names == ("serial_1",)
    assert made.port_count == 1


@pytest.mark.parametrize(
    "overrides",
    [{"hold_end": T0}, {"hold_end": T0 - MINUTE}, {"node_count": -1}],
)
def test_rejects_impossible_requests(overrides):
    with pytest.raises(ValueError):
        request(**overrides)


def test_is_frozen():
    with pytest.raises(AttributeError):
        request().node_count = 3  # type: ignore[misc]


def test_asap():
    assert request(timeslot_start=None).is_asap
    assert not request(timeslot_start=T0 + timedelta(minutes=15)).is_asap
