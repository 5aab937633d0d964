"""``lablet projections rebuild`` replays read models into a shadow copy and switches to the same result."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli
from api.container import Container
from api.settings import Settings


@pytest.fixture
def seeded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LRM_TOKENS", "admin:adm")
    monkeypatch.setenv("LRM_PROCESSORS", "false")
    container = Container(Settings())
    container.start()
    assert container.wait_for_position(container.store.max_position(), 5)
    container.stop()
    return tmp_path


def _templates(data_dir: Path) -> list[dict]:
    container = Container(Settings(data_dir=data_dir, tokens="admin:adm"))
    try:
        container.projection_runner.prepare()  # declares the tables (no replay)
        return container.read_models.query("worker_templates", limit=100).items
    finally:
        container.close()


def test_rebuild_all_reproduces_the_read_models(seeded: Path) -> None:
    before = _templates(seeded)
    assert {t["name"] for t in before} >= {"personal-standard", "enterprise-large"}
    result = CliRunner().invoke(cli, ["projections", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "events replayed" in result.output
    assert _templates(seeded) == before


def test_rebuild_of_an_unknown_projection_names_the_known_ones(seeded: Path) -> None:
    result = CliRunner().invoke(cli, ["projections", "rebuild", "nope"])
    assert result.exit_code != 0
    assert "unknown projection 'nope'" in result.output


def test_rebuild_in_two_processes_reproduces_the_read_models(seeded: Path) -> None:
    before = _templates(seeded)
    result = CliRunner().invoke(cli, ["projections", "rebuild", "--processes", "2"])
    assert result.exit_code == 0, result.output
    assert "switched over" in result.output
    assert _templates(seeded) == before


def test_list_shows_the_stored_checkpoints(seeded: Path) -> None:
    container = Container(Settings())
    head = container.store.max_position()
    container.close()
    result = CliRunner().invoke(cli, ["projections", "list"])
    assert result.exit_code == 0, result.output
    assert head > 0 and f"position={head} " in result.output and "lag=0 " in result.output
    assert "worker_templates" in result.output and "not built yet" not in result.output
