"""Contract of the read-model stores: same results on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from projections.readmodel import Table, UnknownField
from tests.store.conftest import Backend

WORKERS = Table("workers", {"state": str, "free": int, "region": str})


@pytest.fixture
def models(backend: Backend) -> Any:
    models = backend.read_models()
    models.ensure_tables([WORKERS])
    with models.transaction() as tx:
        for i, (state, free, region) in enumerate(
            [("ready", 4, "eu"), ("ready", 1, "us"), ("draining", 0, "eu"),
             ("ready", 4, "us"), ("stopped", 2, None), ("ready", 7, "eu")]
        ):
            tx.put("workers", f"w{i}", {"id": f"w{i}", "state": state, "free": free,
                                         "region": region, "tags": ["a", i]})
    return models


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


def test_get_returns_the_document_or_none(models: Any) -> None:
    assert models.get("workers", "w0") == {"id": "w0", "state": "ready", "free": 4,
                                           "region": "eu", "tags": ["a", 0]}
    assert models.get("workers", "nope") is None


@pytest.mark.parametrize(
    ("where", "order_by", "descending", "expected"),
    [
        (None, None, False, ["w0", "w1", "w2", "w3", "w4", "w5"]),
        ({"state": "ready"}, None, False, ["w0", "w1", "w3", "w5"]),
        ({"state": "ready", "region": "eu"}, None, False, ["w0", "w5"]),
        ({"state": ["draining", "stopped"]}, None, False, ["w2", "w4"]),
        ({"region": None}, None, False, ["w4"]),
        ({"state": []}, None, False, []),
        ({"state": "ready"}, "free", False, ["w1", "w0", "w3", "w5"]),
        ({"state": "ready"}, "free", True, ["w5", "w3", "w0", "w1"]),
        (None, "key", True, ["w5", "w4", "w3", "w2", "w1", "w0"]),
        ({"key": ["w1", "w2"]}, None, False, ["w1", "w2"]),
    ],
)
def test_query_filters_and_sorts(models: Any, where: Any, order_by: Any, descending: bool,
                                 expected: list[str]) -> None:
    page = models.query("workers", where=where, order_by=order_by, descending=descending)
    assert ids(page.items) == expected
    assert page.next_cursor is None
    assert models.count("workers", where=where) == len(expected)


@pytest.mark.parametrize(("order_by", "descending"), [(None, False), ("free", False), ("free", True)])
@pytest.mark.parametrize("page_size", [1, 2, 3, 4])
def test_cursor_pagination_visits_every_match_once_in_order(
    models: Any, order_by: Any, descending: bool, page_size: int
) -> None:
    where = {"state": ["ready", "draining"]}
    everything = ids(models.query("workers", where=where, order_by=order_by,
                                  descending=descending, limit=100).items)
    seen: list[str] = []
    cursor = None
    while True:
        page = models.query("workers", where=where, order_by=order_by, descending=descending,
                            limit=page_size, after=cursor)
        seen.extend(ids(page.items))
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything and len(everything) == 5


def test_only_indexed_fields_can_be_queried(models: Any) -> None:
    with pytest.raises(UnknownField):
        models.query("workers", where={"tags": "a"})
    with pytest.raises(UnknownField):
        models.query("workers", order_by="tags")


def test_transaction_sees_its_own_writes_and_commits_them(models: Any) -> None:
    with models.transaction() as tx:
        tx.put("workers", "w9", {"id": "w9", "state": "ready", "free": 9})
        tx.delete("workers", "w0")
        assert tx.get("workers", "w9")["free"] == 9
        assert tx.get("workers", "w0") is None
        assert ids(tx.query("workers", where={"state": "ready"}, order_by="free",
                            descending=True, limit=2)) == ["w9", "w5"]
    assert models.get("workers", "w9")["free"] == 9
    assert models.get("workers", "w0") is None


def test_failed_transaction_leaves_nothing(models: Any) -> None:
    with pytest.raises(RuntimeError), models.transaction() as tx:
        tx.put("workers", "w0", {"id": "w0", "state": "gone", "free": 0})
        tx.save_checkpoint("p", 42)
        raise RuntimeError("boom")
    assert models.get("workers", "w0")["state"] == "ready"
    assert models.checkpoint("p") is None


def test_put_replaces_document_and_its_indexes(models: Any) -> None:
    with models.transaction() as tx:
        tx.put("workers", "w0", {"id": "w0", "state": "stopped", "free": 0})
    assert ids(models.query("workers", where={"state": "stopped"}).items) == ["w0", "w4"]
    assert models.count("workers", where={"region": "eu"}) == 2


def test_checkpoints(models: Any) -> None:
    assert models.load_checkpoint("p") == 0
    with models.transaction() as tx:
        tx.save_checkpoint("p", 5, version=2)
        assert tx.checkpoint("p").position == 5
    models.save_checkpoint("q", 7)
    assert models.checkpoint("p").position == 5 and models.checkpoint("p").version == 2
    assert {n: c.position for n, c in models.checkpoints().items()} == {"p": 5, "q": 7}
    with models.transaction() as tx:
        tx.delete_checkpoint("p")
    assert models.checkpoint("p") is None


def test_drop_tables_removes_documents(models: Any) -> None:
    models.drop_tables([WORKERS])
    models.ensure_tables([WORKERS])
    assert models.count("workers") == 0


def test_documents_may_hold_datetimes_and_sets(models: Any) -> None:
    from datetime import datetime, timezone

    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    with models.transaction() as tx:
        tx.put("workers", "w8", {"id": "w8", "at": at, "labels": {"b", "a"}, "state": "ready"})
    assert models.get("workers", "w8")["at"] == at.isoformat()
    assert models.get("workers", "w8")["labels"] == ["a", "b"]


def test_invalid_names_are_refused() -> None:
    with pytest.raises(ValueError):
        Table("Workers; drop")
    with pytest.raises(ValueError):
        Table("workers", {"bad-name": str})


def test_put_snapshots_the_document(models: Any) -> None:
    with models.transaction() as tx:
        doc = tx.get("workers", "w1")
        doc["free"] = 3
        tx.put("workers", "w1", doc)
        doc["free"] = 99  # after put: must not leak into the stored document or its index
        doc["state"] = "gone"
        assert tx.get("workers", "w1")["free"] == 3
    assert models.get("workers", "w1")["free"] == 3
    assert ids(models.query("workers", where={"state": "ready"}, order_by="free").items) == [
        "w1", "w0", "w3", "w5"]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_factory_opens_each_kind(kind: str, tmp_path: Any) -> None:
    from adapters.eventstore.readmodel_factory import open_read_model_store

    models = open_read_model_store(kind, sqlite_path=tmp_path / "readmodels.sqlite3")  # type: ignore[arg-type]
    models.ensure_tables([WORKERS])
    models.save_checkpoint("x", 3)
    assert models.load_checkpoint("x") == 3
    models.close()


def test_factory_requires_its_settings() -> None:
    from adapters.eventstore.readmodel_factory import open_read_model_store

    with pytest.raises(ValueError):
        open_read_model_store("sqlite")
    with pytest.raises(ValueError):
        open_read_model_store("postgres")
