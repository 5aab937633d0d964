"""``LRM_DEMO``: the sample definitions and a small workload, booked once across restarts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from adapters.clock import VirtualClock
from api.container import Container
from api.demo import demo_workload, seed_demo, start_banner
from api.settings import Settings
from tests.api.test_instances_support import NOW, TOKENS


def container_in(data_dir: Path, **settings: object) -> Container:
    return Container(Settings(data_dir=data_dir, store="sqlite", tokens=TOKENS, **settings), clock=VirtualClock(NOW))


def test_the_demo_publishes_the_samples_and_books_asap_and_future_labs(tmp_path: Path) -> None:
    container = container_in(tmp_path)
    container.seed_worker_templates()
    seeded = seed_demo(container)
    assert seeded.definitions == ["ccna-basic-routing 1.0.0", "datacenter-fabric 1.0.0", "ospf-multiarea 1.0.0"]
    assert len(seeded.instance_ids) == len(demo_workload()) == len(set(seeded.instance_ids))
    instances = [container.store.get(i) for i in seeded.instance_ids]
    assert {i.state.value for i in instances} == {"PENDING"}
    starts = Counter("asap" if i.timeslot_start is None else "booked" for i in instances)
    assert starts["asap"] >= 1 and starts["booked"] >= 4
    assert all(i.timeslot_start > NOW for i in instances if i.timeslot_start is not None)
    assert {i.reservation_id for i in instances} >= {"exam-ccna-7", "booking-1041"}
    container.close()


def test_a_restart_books_nothing_again(tmp_path: Path) -> None:
    first = container_in(tmp_path)
    booked = seed_demo(first).instance_ids
    head = first.store.max_position()
    again = seed_demo(first)
    assert again.already_booked and again.instance_ids == []
    assert first.store.max_position() == head  # same definitions: no-op publishes, nothing appended
    assert booked
    first.close()


def test_the_container_seeds_the_demo_on_start_only_when_asked(tmp_path: Path) -> None:
    for demo, expected in ((False, 0), (True, len(demo_workload()))):
        container = container_in(tmp_path / str(demo), demo=demo)
        container.start()
        try:
            booked = [e for e in container.store.read_all(after=0, limit=10_000) if e.event_name == "InstanceRequested"]
            assert len(booked) == expected
        finally:
            container.stop()


def test_the_banner_says_where_the_dashboard_and_the_admin_token_are(tmp_path: Path) -> None:
    generated = Container(Settings(data_dir=tmp_path, store="sqlite", tokens="", port=8123),
                          clock=VirtualClock(NOW))
    given = container_in(tmp_path / "given")
    try:
        banner = start_banner(generated)
        assert "http://127.0.0.1:8123/" in banner and str(tmp_path / "tokens.json") in banner
        assert "LRM_TOKENS" in start_banner(given)
        behind = Container(Settings(data_dir=tmp_path / "behind", store="sqlite", tokens="", port=8124,
                                    public_port=8123), clock=VirtualClock(NOW))
        try:  # the projections process of `lablet serve --workers N` names the API's port
            assert "http://127.0.0.1:8123/" in start_banner(behind)
        finally:
            behind.close()
    finally:
        generated.close()
        given.close()
