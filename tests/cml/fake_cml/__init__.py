"""A local CML 2.10 controller for tests, faithful enough for Cisco's own client (virl2-client).

It implements what a lab's life touches — see docs/adapters/cml.md ("The fake CML server") —
over real HTTP, with injected faults. ``FakeCml`` holds the state and the test knobs;
``RunningFakeCml`` serves it.
"""

from tests.cml.fake_cml.server import RunningFakeCml
from tests.cml.fake_cml.state import FakeCml

__all__ = ["FakeCml", "RunningFakeCml"]
