from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.cloud.ami import Image, ec2_name_filter, parse_version, pick_image
from processors.ports.cloud import AmiNotFound

IMAGES = [
    Image("ami-a", "CML-2.8.0-20250101", "2025-01-01T00:00:00.000Z"),
    Image("ami-b", "CML-2.9.0-20260301", "2026-03-01T00:00:00.000Z"),
    Image("ami-c", "CML-2.9.1-20261101", "2026-11-01T00:00:00.000Z"),
    Image("ami-d", "ubuntu-24.04-20261120", "2026-11-20T00:00:00.000Z"),
    Image("ami-e", "CML-2.10.0-20261001", "2026-10-01T00:00:00.000Z"),
]


@pytest.mark.parametrize(
    ("pattern", "minimum", "expected"),
    [
        ("CML-2.9.*", None, "ami-c"),
        ("CML-*", None, "ami-c"),
        ("CML-*", "2.10", "ami-e"),
        ("CML-2.[89].*", None, "ami-c"),
        ("CML-2.8.*", None, "ami-a"),
        ("CML-2.9.*", "2.9", "ami-c"),
        ("CML-2.9.*", "2.9.0", "ami-c"),
        ("CML-*", "2.9.1", "ami-c"),
        ("*", None, "ami-d"),
    ],
)
def test_pick_image(pattern: str, minimum: str | None, expected: str) -> None:
    assert pick_image(IMAGES, pattern, minimum).image_id == expected


@pytest.mark.parametrize(("pattern", "minimum"), [("CML-3.*", None), ("CML-2.9.*", "2.9.2"), ("cml-*", None)])
def test_pick_image_finds_nothing(pattern: str, minimum: str | None) -> None:
    with pytest.raises(AmiNotFound):
        pick_image(IMAGES, pattern, minimum)


def test_a_minimum_without_a_number_is_refused() -> None:
    with pytest.raises(AmiNotFound, match="no version number"):
        pick_image(IMAGES, "CML-*", "latest")


@pytest.mark.parametrize(
    ("name", "version"),
    [("CML-2.9.1-20261101", (2, 9, 1)), ("cml_2.10", (2, 10)), ("v7", (7,)), ("none", None)],
)
def test_parse_version(name: str, version: tuple[int, ...] | None) -> None:
    assert parse_version(name) == version


def test_ec2_filter_widens_character_classes() -> None:
    assert ec2_name_filter("CML-2.[89].*") == "CML-2.?.*"
    assert ec2_name_filter("CML-2.9.*") == "CML-2.9.*"


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(0, 99)), min_size=1, max_size=8))
def test_the_choice_is_the_latest_creation_among_matches(dates: list[tuple[int, int, int]]) -> None:
    images = [
        Image(f"ami-{n}", f"CML-{a}.{b}.0", f"2026-01-01T00:00:{c:02d}.000Z")
        for n, (a, b, c) in enumerate(dates)
    ]
    chosen = pick_image(images, "CML-*")
    assert chosen.created_at == max(i.created_at for i in images)
    assert pick_image(list(reversed(images)), "CML-*") == chosen
