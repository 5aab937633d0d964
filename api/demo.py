"""Demo data (``LRM_DEMO=1``, the default of ``./scripts/run``): so a newcomer sees a live fleet.

Publishes the sample definitions of ``config/samples/`` and books a small workload relative to
now: a few labs as soon as possible, bookings over the next hours and a small exam wave. The
processors do the rest (the autoscaler starts workers, the scheduler places, the controllers
bring labs up), so the dashboard moves on its own.

Seeding is idempotent across restarts: publishing the same definition again is a no-op, and
the workload is booked once (each request carries an idempotency key; when the first key is
already known, nothing is booked again).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

from domain.context import CommandContext
from processors.commands.instances import Caller, InstanceRequest, idempotent_instance_id

if TYPE_CHECKING:
    from api.container import Container

SAMPLES = Path(__file__).resolve().parents[1] / "config" / "samples"
DEMO_CALLER = Caller("service", "demo")
FIRST_KEY = "demo-1"


@dataclass(frozen=True)
class Booking:
    definition: str
    owner_id: str
    start_in_minutes: int | None  # None: as soon as possible
    duration_minutes: int
    reservation_id: str | None = None


def demo_workload() -> list[Booking]:
    """What the demo books: ASAP labs, a spread of bookings, and an exam wave in two hours."""
    asap = [Booking("ccna-basic-routing", owner, None, 60) for owner in ("alice", "bob", "carol")]
    spread = [
        Booking("ospf-multiarea", "dave", 45, 90, "booking-1041"),
        Booking("ccna-basic-routing", "erin", 75, 60, "booking-1042"),
        Booking("datacenter-fabric", "frank", 180, 120, "booking-1043"),
        Booking("ospf-multiarea", "grace", 300, 90, "booking-1044"),
    ]
    wave = [Booking("ccna-basic-routing", f"student-{n:02d}", 120, 90, "exam-ccna-7") for n in range(1, 7)]
    return asap + spread + wave


@dataclass
class DemoSeeded:
    definitions: list[str] = field(default_factory=list)
    instance_ids: list[str] = field(default_factory=list)
    already_booked: bool = False


def sample_definitions(samples: Path = SAMPLES) -> list[tuple[dict[str, Any], str]]:
    """(publish fields, lab YAML text) of every sample with a ``definition.yaml``."""
    found = []
    for definition in sorted(samples.glob("*/definition.yaml")):
        fields = dict(YAML(typ="safe").load(definition.read_text()))
        lab_file = definition.parent / str(fields.pop("lab_yaml", "lab.yaml"))
        if "version" in fields:
            fields["version"] = str(fields["version"])
        found.append((fields, lab_file.read_text()))
    return found


def seed_demo(container: Container, *, now: datetime | None = None) -> DemoSeeded:
    """Publish the samples and book the demo workload once."""
    now = now or container.clock.now()
    seeded = DemoSeeded()
    admin = CommandContext(at=now, actor="system:demo", causation_id="demo:definitions")
    for fields, lab_yaml in sample_definitions():
        published = container.definition_service.publish(fields, admin, lab_yaml=lab_yaml)
        seeded.definitions.append(f"{published.version.name} {published.version.version}")
    if container.store.exists(idempotent_instance_id(DEMO_CALLER, FIRST_KEY)):
        seeded.already_booked = True
        return seeded
    for n, booking in enumerate(demo_workload(), start=1):
        start = None if booking.start_in_minutes is None else now + timedelta(minutes=booking.start_in_minutes)
        request = InstanceRequest(
            definition=booking.definition, owner_id=booking.owner_id, timeslot_start=start,
            duration_minutes=booking.duration_minutes, reservation_id=booking.reservation_id,
        )
        ctx = CommandContext(at=now, actor=DEMO_CALLER.actor, causation_id=f"demo:booking-{n}")
        result = container.instance_service.request(request, DEMO_CALLER, ctx, idempotency_key=f"demo-{n}")
        seeded.instance_ids.append(result.instance_id)
    return seeded


def start_banner(container: Container) -> str:
    """Where to look: the dashboard URL and where the admin token is."""
    settings = container.settings
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    where = (f"{container.tokens_path} (the \"admin\" entry)" if container.tokens_path is not None
             else "LRM_TOKENS (the admin:<token> entry)")
    port = settings.port if settings.public_port is None else settings.public_port
    return f"Dashboard: http://{host}:{port}/ — sign in with the admin token from {where}"
