from pathlib import Path

import pytest

from api.auth import Role, TokenRegistry, generate_tokens, registry_from_settings


def test_parse_roles_tokens_and_subjects() -> None:
    registry = TokenRegistry.parse("admin:s3cret, user:t0k:alice ,grader:g")
    assert len(registry) == 3
    assert registry.verify("t0k").role is Role.USER
    assert registry.verify("t0k").subject == "alice"
    assert registry.verify("s3cret").actor == "admin:admin"
    assert registry.verify("nope") is None


@pytest.mark.parametrize(
    "spec, message",
    [("root:x", "unknown role 'root'"), ("admin", "expected role:token"), ("admin:", "expected role:token")],
)
def test_bad_token_specs_are_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TokenRegistry.parse(spec)


def test_registry_keeps_only_hashes() -> None:
    registry = TokenRegistry.parse("admin:plain-text-secret")
    assert "plain-text-secret" not in repr(vars(registry))


def test_generated_tokens_are_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    first = generate_tokens(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert set(first) == {r.value for r in Role}
    assert generate_tokens(path) == first
    registry, written = registry_from_settings("", tmp_path)
    assert written == path
    assert registry.verify(first["service"]["token"]).role is Role.SERVICE


def test_a_process_that_loses_the_race_to_write_the_tokens_uses_the_winners(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lablet serve --workers N: every process generates at once on a fresh data directory."""
    path = tmp_path / "tokens.json"
    winner = generate_tokens(path)
    # the loser looked before the winner's file was there
    monkeypatch.setattr(Path, "exists", lambda self: False if self == path else Path.is_file(self))
    assert generate_tokens(path) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.json"]  # no draft left behind
