"""docs/cloudevents.md stays true: the catalogue is fresh and the receiver recipe works."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from adapters.webhooks.signing import generate_secret, webhook_headers

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "cloudevents.md"


def test_catalogue_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_cloudevents_catalog.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_raw_hmac_recipe_in_the_docs_verifies_our_signatures():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    recipe = next(b for b in blocks if "def verify(" in b)
    namespace: dict = {}
    exec(recipe, namespace)  # noqa: S102 - our own documentation
    secret, body = generate_secret(), b'{"id": "1"}'
    headers = webhook_headers(secret, "evt-1", int(time.time()), body)
    assert namespace["verify"](secret, headers, body)
    assert not namespace["verify"](secret, headers, body + b" ")
    assert not namespace["verify"](generate_secret(), headers, body)
