"""Each filter plugin on its own: what passes, and the exact reason of each failure."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum

import pytest

from domain.placement.plugins.filters import (
    LicenseAffinity,
    NestedVirtAndAmi,
    NodeLimit,
    PortsOverWindow,
    ResourcesOverWindow,
    WorkerState,
)
from domain.placement.plugins.filters.nested_virt_and_ami import version_key
from domain.resources import Resources
from tests.domain.placement.builders import HOUR, MINUTE, T0, candidate, ledger, request, reserve


class _StateEnum(str, Enum):
    RUNNING = "RUNNING"
    DRAINING = "DRAINING"


# --- WorkerState ------------------------------------------------------------------
# The default request books 09:15 with a 15 min lead: the worker must be ready by 09:00.

WORKER_STATE_CASES = [
    ("running passes", {}, {"state": "RUNNING"}, None),
    ("running enum passes", {}, {"state": _StateEnum.RUNNING}, None),
    ("provisioning ready exactly in time", {}, {"state": "PROVISIONING", "expected_ready_at": T0}, None),
    ("pending ready early", {}, {"state": "PENDING", "expected_ready_at": T0 - HOUR}, None),
    ("stopped ready early", {}, {"state": "STOPPED", "expected_ready_at": T0 - MINUTE}, None),
    (
        "provisioning one minute late",
        {},
        {"state": "PROVISIONING", "expected_ready_at": T0 + MINUTE},
        "worker is PROVISIONING, expected ready at 2026-03-02T09:01:00+00:00, "
        "after 2026-03-02T09:00:00+00:00 when instantiation starts",
    ),
    (
        "pending without an expected ready time",
        {},
        {"state": "PENDING"},
        "worker is PENDING with no expected ready time",
    ),
    ("draining", {}, {"state": "DRAINING"}, "worker is DRAINING and accepts no new instances"),
    ("draining enum", {}, {"state": _StateEnum.DRAINING}, "worker is DRAINING and accepts no new instances"),
    ("stopping", {}, {"state": "STOPPING"}, "worker is STOPPING and accepts no new instances"),
    ("terminated", {}, {"state": "TERMINATED"}, "worker is TERMINATED and accepts no new instances"),
    ("failed", {}, {"state": "FAILED"}, "worker is FAILED and accepts no new instances"),
    (
        "draining even if ready",
        {},
        {"state": "DRAINING", "expected_ready_at": T0 - HOUR},
        "worker is DRAINING and accepts no new instances",
    ),
    (
        "ASAP needs ready now: later is too late",
        {"timeslot_start": None},
        {"state": "PROVISIONING", "expected_ready_at": T0 + 5 * MINUTE},
        "worker is PROVISIONING, expected ready at 2026-03-02T09:05:00+00:00, "
        "after 2026-03-02T09:00:00+00:00 when instantiation starts",
    ),
    ("ASAP with a worker ready now", {"timeslot_start": None}, {"state": "PROVISIONING", "expected_ready_at": T0}, None),
    (
        "a timeslot in the past is ASAP: ready by the hold start",
        {"timeslot_start": T0 - HOUR},
        {"state": "STOPPED", "expected_ready_at": T0 - 30 * MINUTE},
        None,
    ),
    (
        "a far booking lets a worker still booting take it",
        {"timeslot_start": T0 + 3 * HOUR, "hold_start": T0 + 165 * MINUTE, "hold_end": T0 + 5 * HOUR},
        {"state": "PENDING", "expected_ready_at": T0 + 2 * HOUR},
        None,
    ),
]


@pytest.mark.parametrize(
    ("request_overrides", "candidate_overrides", "expected"),
    [case[1:] for case in WORKER_STATE_CASES],
    ids=[case[0] for case in WORKER_STATE_CASES],
)
def test_worker_state(request_overrides, candidate_overrides, expected):
    assert WorkerState().filter(request(**request_overrides), candidate(**candidate_overrides)) == expected


# --- LicenseAffinity --------------------------------------------------------------

LICENSE_CASES = [
    ("in affinity", {"PERSONAL", "ENTERPRISE"}, "PERSONAL", None),
    ("only one allowed", {"ENTERPRISE"}, "ENTERPRISE", None),
    ("empty affinity takes any", set(), "EVALUATION", None),
    ("not in affinity", {"PERSONAL", "ENTERPRISE"}, "EVALUATION", "license EVALUATION not in affinity [ENTERPRISE, PERSONAL]"),
    ("case matters", {"personal"}, "PERSONAL", "license PERSONAL not in affinity [personal]"),
]


@pytest.mark.parametrize(
    ("affinity", "license_type", "expected"), [c[1:] for c in LICENSE_CASES], ids=[c[0] for c in LICENSE_CASES]
)
def test_license_affinity(affinity, license_type, expected):
    verdict = LicenseAffinity().filter(
        request(license_affinity=frozenset(affinity)), candidate(license_type=license_type)
    )
    assert verdict == expected


# --- NestedVirtAndAmi -------------------------------------------------------------

IMAGE_CASES = [
    ("everything matches", {}, {}, None),
    ("nested virt needed and present", {"nested_virt": True}, {"nested_virt": True}, None),
    ("nested virt not needed, absent", {"nested_virt": False}, {"nested_virt": False}, None),
    (
        "nested virt needed, absent",
        {"nested_virt": True},
        {"nested_virt": False},
        "nested virtualisation required, worker has none",
    ),
    ("no AMI constraints", {"ami_name_pattern": None, "ami_min_version": None}, {"ami_name": "", "ami_version": ""}, None),
    ("glob on a template's glob", {"ami_name_pattern": "CML-2.*"}, {"ami_name": "CML-2.9.*"}, None),
    ("AMI name mismatch", {"ami_name_pattern": "CML-3.*"}, {}, "AMI CML-2.9.1 does not match CML-3.*"),
    ("AMI glob is case-sensitive", {"ami_name_pattern": "cml-2.*"}, {}, "AMI CML-2.9.1 does not match cml-2.*"),
    ("version equal with fewer parts", {"ami_min_version": "2.9.1"}, {"ami_version": "2.9.1.0"}, None),
    ("version numerically newer", {"ami_min_version": "2.9"}, {"ami_version": "2.10.0"}, None),
    (
        "version too old",
        {"ami_min_version": "2.10"},
        {"ami_version": "2.9.1"},
        "AMI version 2.9.1 below minimum 2.10",
    ),
    (
        "nested virt is checked first",
        {"nested_virt": True, "ami_name_pattern": "CML-3.*"},
        {"nested_virt": False},
        "nested virtualisation required, worker has none",
    ),
]


@pytest.mark.parametrize(
    ("request_overrides", "candidate_overrides", "expected"),
    [c[1:] for c in IMAGE_CASES],
    ids=[c[0] for c in IMAGE_CASES],
)
def test_nested_virt_and_ami(request_overrides, candidate_overrides, expected):
    assert NestedVirtAndAmi().filter(request(**request_overrides), candidate(**candidate_overrides)) == expected


@pytest.mark.parametrize(
    ("lower", "higher"),
    [("2.9", "2.10"), ("2.9.0", "2.9.1"), ("", "0.1"), ("v2.8.9", "2.9"), ("2.9.1", "2.9.1-build3")],
)
def test_version_key_orders_numerically(lower, higher):
    assert version_key(lower) < version_key(higher)


@pytest.mark.parametrize(("a", "b"), [("2.9", "2.9.0"), ("2", "2.0.0"), ("v2.9.1", "2.9.1")])
def test_version_key_equal_versions(a, b):
    assert version_key(a) == version_key(b)


# --- NodeLimit --------------------------------------------------------------------


def _busy(nodes: int, *, max_nodes: int = 20, start=T0, end=T0 + 2 * HOUR):
    return reserve(ledger(max_nodes=max_nodes), "other", nodes=nodes, start=start, end=end)


NODE_CASES = [
    ("fits an empty worker", {"node_count": 5}, {}, None),
    ("exactly the limit", {"node_count": 20}, {}, None),
    ("over max_nodes", {"node_count": 21}, {}, "node_count 21 exceeds the worker's node limit 20"),
    (
        "PERSONAL license caps at 20 whatever the template says",
        {"node_count": 21},
        {"max_nodes": 30},
        "node_count 21 exceeds the worker's node limit 20",
    ),
    ("ENTERPRISE allows more", {"node_count": 60}, {"license_type": "ENTERPRISE", "max_nodes": 100}, None),
    (
        "the ledger's limit counts too",
        {"node_count": 12},
        {"max_nodes": 20, "ledger": ledger(max_nodes=10)},
        "node_count 12 exceeds the worker's node limit 10",
    ),
    ("headroom exactly used", {"node_count": 5}, {"ledger": _busy(15)}, None),
    (
        "headroom exceeded at peak",
        {"node_count": 5},
        {"ledger": _busy(16)},
        "nodes over window: 16 reserved at peak + 5 requested > limit 20",
    ),
    (
        "an overlap of one minute is enough to clash",
        {"node_count": 5},
        {"ledger": _busy(16, start=T0 + 2 * HOUR - MINUTE, end=T0 + 3 * HOUR)},
        "nodes over window: 16 reserved at peak + 5 requested > limit 20",
    ),
    ("back-to-back holds do not overlap", {"node_count": 5}, {"ledger": _busy(20, start=T0 - HOUR, end=T0)}, None),
    ("a hold starting at our end does not overlap", {"node_count": 5}, {"ledger": _busy(20, start=T0 + 2 * HOUR, end=T0 + 3 * HOUR)}, None),
]


@pytest.mark.parametrize(
    ("request_overrides", "candidate_overrides", "expected"),
    [c[1:] for c in NODE_CASES],
    ids=[c[0] for c in NODE_CASES],
)
def test_node_limit(request_overrides, candidate_overrides, expected):
    assert NodeLimit().filter(request(**request_overrides), candidate(**candidate_overrides)) == expected


# --- ResourcesOverWindow ----------------------------------------------------------


def _sequential_eights():
    # two holds of 8 cores one after the other: the window's peak is 8, not 16
    busy = ledger(cpu=16)
    reserve(busy, "first", cpu=8, start=T0, end=T0 + HOUR)
    return reserve(busy, "second", cpu=8, start=T0 + HOUR, end=T0 + 2 * HOUR)


RESOURCE_CASES = [
    ("fits an empty worker", {"requirements": Resources(16, 64, 500)}, {}, None),
    (
        "larger than the whole worker",
        {"requirements": Resources(20, 8, 20)},
        {},
        "cpu_cores 20 requested > capacity 16",
    ),
    (
        "every field too large is named",
        {"requirements": Resources(20, 80, 20)},
        {},
        "cpu_cores 20 requested > capacity 16; memory_gb 80 requested > capacity 64",
    ),
    ("peak, not sum, of sequential holds", {"requirements": Resources(8, 8, 20)}, {"ledger": _sequential_eights()}, None),
    (
        "over capacity at the peak",
        {"requirements": Resources(8, 8, 20)},
        {"ledger": reserve(ledger(), "other", cpu=10, start=T0 + HOUR, end=T0 + 3 * HOUR)},
        "cpu_cores over window: 10 reserved at peak + 8 requested > capacity 16",
    ),
    (
        "storage and memory at the peak",
        {"requirements": Resources(1, 40, 300)},
        {"ledger": reserve(ledger(), "other", memory=30, storage=250)},
        "memory_gb over window: 30 reserved at peak + 40 requested > capacity 64; "
        "storage_gb over window: 250 reserved at peak + 300 requested > capacity 500",
    ),
    (
        "holds outside the window do not count",
        {"requirements": Resources(16, 64, 500)},
        {"ledger": reserve(ledger(), "later", cpu=16, memory=64, storage=500, start=T0 + 2 * HOUR, end=T0 + 4 * HOUR)},
        None,
    ),
    (
        "fractional cores add up exactly",
        {"requirements": Resources(0.3, 1, 1)},
        {"ledger": reserve(reserve(ledger(cpu=0.6), "a", cpu=0.1), "b", cpu=0.2)},
        None,
    ),
]


@pytest.mark.parametrize(
    ("request_overrides", "candidate_overrides", "expected"),
    [c[1:] for c in RESOURCE_CASES],
    ids=[c[0] for c in RESOURCE_CASES],
)
def test_resources_over_window(request_overrides, candidate_overrides, expected):
    assert ResourcesOverWindow().filter(request(**request_overrides), candidate(**candidate_overrides)) == expected


# --- PortsOverWindow --------------------------------------------------------------


def _three_ports(holding: dict[str, int], *, start=T0, end=T0 + 2 * HOUR):
    return reserve(ledger(ports=(2000, 2002)), "other", ports=holding, start=start, end=end)


PORT_CASES = [
    ("plenty free", {}, {}, None),
    ("exactly enough", {}, {"ledger": _three_ports({"serial_1": 2000})}, None),
    (
        "too few free over the window",
        {},
        {"ledger": _three_ports({"serial_1": 2000, "vnc_1": 2001})},
        "ports over window: 1 free, 2 needed",
    ),
    (
        "ports held outside the window are free",
        {},
        {"ledger": _three_ports({"a": 2000, "b": 2001, "c": 2002}, start=T0 - 2 * HOUR, end=T0)},
        None,
    ),
    ("no ports needed", {"port_names": ()}, {"ledger": _three_ports({"a": 2000, "b": 2001, "c": 2002})}, None),
]


@pytest.mark.parametrize(
    ("request_overrides", "candidate_overrides", "expected"),
    [c[1:] for c in PORT_CASES],
    ids=[c[0] for c in PORT_CASES],
)
def test_ports_over_window(request_overrides, candidate_overrides, expected):
    assert PortsOverWindow().filter(request(**request_overrides), candidate(**candidate_overrides)) == expected


def test_filters_have_distinct_names():
    names = [f.name for f in (WorkerState(), LicenseAffinity(), NestedVirtAndAmi(), NodeLimit(), ResourcesOverWindow(), PortsOverWindow())]
    assert len(set(names)) == len(names)


def test_hold_window_is_half_open_for_ports():
    busy = _three_ports({"a": 2000, "b": 2001, "c": 2002}, start=T0 + 2 * HOUR, end=T0 + 3 * HOUR)
    assert PortsOverWindow().filter(request(), candidate(ledger=busy)) is None
    assert PortsOverWindow().filter(request(hold_end=T0 + 2 * HOUR + timedelta(seconds=1)), candidate(ledger=busy)) == (
        "ports over window: 0 free, 2 needed"
    )
