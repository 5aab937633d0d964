"""The rebuild's fast paths give what the slow ones gave: per-class dispatch, event filters,
cached timestamp texts and the index values of an ``executemany`` row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.dispatch import ByEventClass
from projections.projection import EventFilter
from projections.readmodel import Table, dumps, dumps_many, index_value, index_values_of
from projections.readmodels.timestamps import iso


class Base: ...


class Middle(Base): ...


class Leaf(Middle): ...


class Other: ...


def test_by_event_class_answers_for_the_most_specific_registered_base_or_the_default() -> None:
    table: ByEventClass[str] = ByEventClass({Base: "base", Middle: "middle"}, "none")
    assert table[Leaf] == "middle"
    assert table[Base] == "base"
    assert table[Other] == "none"
    assert set(table) == {Leaf, Base, Other}  # resolved once, then a plain hit


def test_an_event_filter_takes_subclasses_of_the_handled_classes_or_everything() -> None:
    assert EventFilter((Middle,))[Leaf] and not EventFilter((Middle,))[Base]
    assert EventFilter(None)[Other]


@settings(max_examples=60, deadline=None)
@given(moment=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                      timezone(-timedelta(hours=8))])),
       naive=st.datetimes())
def test_iso_is_the_fixed_width_utc_text_whether_cached_or_not(moment: datetime, naive: datetime) -> None:
    expected = moment.astimezone(UTC).isoformat(timespec="microseconds")
    assert iso(moment) == expected
    assert iso(moment) == expected  # from the cache
    assert iso(moment.astimezone(UTC)) == expected  # the same instant elsewhere: the same text
    assert iso(naive) == naive.astimezone(UTC).isoformat(timespec="microseconds")
    assert iso(None) is None


TABLE = Table("t", {"s": str, "i": int, "f": float, "b": bool})
values = st.one_of(st.none(), st.text(max_size=5), st.integers(-10, 10), st.booleans(),
                   st.floats(allow_nan=False, allow_infinity=False, width=32),
                   st.datetimes(timezones=st.just(UTC)))


@settings(max_examples=80, deadline=None)
@given(doc=st.dictionaries(st.sampled_from(["s", "i", "f", "b", "x"]), values))
def test_index_values_of_a_table_equal_index_value_field_by_field(doc: dict[str, Any]) -> None:
    try:
        expected: Any = [index_value(TABLE, name, doc) for name in TABLE.indexes]
    except (TypeError, ValueError) as error:  # e.g. int(a text): both refuse it the same way
        expected = type(error)
    try:
        got: Any = index_values_of(TABLE)(doc)
    except (TypeError, ValueError) as error:
        got = type(error)
    assert got == expected


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
              st.text(st.characters(blacklist_categories=()), max_size=4),
              st.floats(allow_nan=False), st.datetimes(timezones=st.just(UTC)), st.frozensets(st.integers(0, 3))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8)


@settings(max_examples=80, deadline=None)
@given(docs=st.lists(st.dictionaries(st.text(max_size=3), json_values, max_size=4), max_size=5))
def test_dumps_many_writes_what_dumps_writes_for_each_document(docs: list[dict[str, Any]]) -> None:
    assert dumps_many(docs) == [dumps(doc) for doc in docs]  # big integers and lone surrogates too
