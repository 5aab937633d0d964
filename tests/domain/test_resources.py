from __future__ import annotations

import math

import pytest

from domain.errors import InvalidInput
from domain.resources import ZERO, Resources


def test_addition_and_subtraction_are_field_wise() -> None:
    a = Resources(4, 16, 100)
    b = Resources(2.5, 8, 20)
    assert a + b == Resources(6.5, 24, 120)
    assert a - b == Resources(1.5, 8, 80)
    assert a + ZERO == a


def test_fields_are_stored_as_floats() -> None:
    assert isinstance(Resources(4, 16, 100).cpu_cores, float)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cpu_cores": -1, "memory_gb": 1, "storage_gb": 1}, "cpu_cores"),
        ({"cpu_cores": 1, "memory_gb": -0.5, "storage_gb": 1}, "memory_gb"),
        ({"cpu_cores": 1, "memory_gb": 1, "storage_gb": -10}, "storage_gb"),
        ({"cpu_cores": math.nan, "memory_gb": 1, "storage_gb": 1}, "cpu_cores"),
        ({"cpu_cores": math.inf, "memory_gb": 1, "storage_gb": 1}, "cpu_cores"),
        ({"cpu_cores": "4", "memory_gb": 1, "storage_gb": 1}, "cpu_cores"),
        ({"cpu_cores": True, "memory_gb": 1, "storage_gb": 1}, "cpu_cores"),
    ],
)
def test_invalid_values_are_rejected_with_the_field_name(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        Resources(**kwargs)
    assert caught.value.field == field


def test_subtraction_below_zero_is_invalid() -> None:
    with pytest.raises(InvalidInput) as caught:
        Resources(1, 1, 1) - Resources(2, 1, 1)
    assert caught.value.field == "cpu_cores"


def test_float_drift_does_not_make_an_exact_fit_fail() -> None:
    used = Resources(0.1, 0, 0) + Resources(0.2, 0, 0)
    assert used.fits_within(Resources(0.3, 0, 0))
    assert Resources(0.3, 0, 0) - used == ZERO


@pytest.mark.parametrize(
    ("need", "capacity", "exceeded"),
    [
        (Resources(4, 16, 100), Resources(4, 16, 100), []),
        (Resources(5, 16, 100), Resources(4, 16, 100), ["cpu_cores"]),
        (Resources(4, 17, 101), Resources(4, 16, 100), ["memory_gb", "storage_gb"]),
        (Resources(9, 99, 999), Resources(4, 16, 100), ["cpu_cores", "memory_gb", "storage_gb"]),
        (ZERO, ZERO, []),
    ],
)
def test_exceeded_fields_and_fits_within(need: Resources, capacity: Resources, exceeded: list[str]) -> None:
    assert need.exceeded_fields(capacity) == exceeded
    assert need.fits_within(capacity) is (not exceeded)


def test_headroom_clamps_at_zero() -> None:
    assert Resources(4, 16, 100).headroom(Resources(5, 10, 100)) == Resources(0, 6, 0)


def test_dict_round_trip() -> None:
    r = Resources(2.5, 8, 40)
    assert r.to_dict() == {"cpu_cores": 2.5, "memory_gb": 8.0, "storage_gb": 40.0}
    assert Resources.from_dict(r.to_dict()) == r


def test_from_dict_names_missing_fields() -> None:
    with pytest.raises(InvalidInput, match="memory_gb"):
        Resources.from_dict({"cpu_cores": 1, "storage_gb": 1})
