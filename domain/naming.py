"""Natural keys (template and definition names): what an operator may type and a URL can carry."""

from __future__ import annotations

import re

from domain.errors import InvalidInput

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_NAME_LENGTH = 200


def validate_name(value: object, field: str = "name") -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(field, f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}")
    if not NAME_PATTERN.match(value):
        raise InvalidInput(
            field, f"must be lowercase letters, digits and '-', starting with a letter or digit, got {value!r}"
        )
    return value
