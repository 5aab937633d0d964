"""The fake CML server, kept under its old name for the tests that import it from here."""

from tests.cml.fake_cml import FakeCml, RunningFakeCml
from tests.cml.fake_cml.app import build_app

__all__ = ["FakeCml", "RunningFakeCml", "build_app"]
