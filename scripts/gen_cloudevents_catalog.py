"""Regenerate the CloudEvent type catalogue in docs/cloudevents.md from the domain events.

Usage: ``python scripts/gen_cloudevents_catalog.py`` (rewrites the table between the
markers) or ``--check`` (exit 1 if the document is out of date, for CI).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.cloudevents.types import catalog  # noqa: E402

DOC = ROOT / "docs" / "cloudevents.md"
START, END = "<!-- catalog:start -->", "<!-- catalog:end -->"
# Recorded in the event store but never sent out.
REDACTED = {"WebhookSubscription.SubscriptionCreated": {"secret", "auth_token"},
            "WebhookSubscription.SubscriptionSecretRotated": {"secret"}}


def table() -> str:
    lines = ["| type | domain event | data fields |", "|---|---|---|"]
    for event_type, name, fields in catalog():
        shown = [f for f in fields if f not in REDACTED.get(name, set())]
        data = ", ".join(f"`{f}`" for f in shown) or "(none)"
        lines.append(f"| `{event_type}` | `{name}` | {data} |")
    return "\n".join(lines)


def render(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    current = DOC.read_text()
    updated = render(current)
    if "--check" in argv:
        if updated != current:
            print(f"{DOC} is out of date: run scripts/gen_cloudevents_catalog.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(updated)
    print(f"{DOC}: {len(catalog())} event types")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
