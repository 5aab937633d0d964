"""SPEC §2: each top-level folder imports only what its layer may import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["domain", "projections", "processors", "adapters", "api"]
ALLOWED: dict[str, set[str]] = {
    "domain": {"domain"},
    "projections": {"domain", "projections"},
    "processors": {"domain", "projections", "processors"},
    "adapters": {"domain", "processors", "adapters"},
    "api": set(LAYERS),
}
# Third-party packages the pure layers must not use (I/O, web, cloud).
FORBIDDEN_IN_DOMAIN = {"fastapi", "httpx", "psycopg", "sqlite3", "aiobotocore", "boto3", "requests",
                       "socket", "uvicorn", "esdbclient", "structlog"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_it_may(layer: str) -> None:
    offenders = []
    for path in _modules(layer):
        for name in _imports(path) & set(LAYERS):
            if name not in ALLOWED[layer]:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_domain_does_no_io() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules("domain")
        for name in _imports(path) & FORBIDDEN_IN_DOMAIN
    ]
    assert not offenders, "\n".join(offenders)


CLOCK_READS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def test_domain_reads_no_clock() -> None:
    """Time is passed in (CommandContext.at); a clock read in domain/ breaks replay and simulation."""
    offenders = []
    for path in _modules("domain"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLOCK_READS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"datetime", "date", "time"}
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {node.func.value.id}.{node.func.attr}()")
    assert not offenders, "\n".join(offenders)
