"""Translating botocore failures into the cloud port's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from processors.ports.cloud import AmiNotFound, CloudCapacityError, CloudError, CloudNotFound

NOT_FOUND = frozenset({"InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"})
NO_CAPACITY = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "InstanceLimitExceeded",
        "VcpuLimitExceeded",
        "InsufficientHostCapacity",
    }
)
NO_IMAGE = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"})
THROTTLED = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})


def translate_client_error(error: ClientError, action: str) -> CloudError:
    info = error.response.get("Error", {})
    code = str(info.get("Code", ""))
    detail = f"{action}: {code or 'error'}: {info.get('Message', '')}".rstrip(": ")
    if code in NOT_FOUND:
        return CloudNotFound(detail, code=code)
    if code in NO_CAPACITY:
        return CloudCapacityError(detail, code=code)
    if code in NO_IMAGE:
        return AmiNotFound(detail, code=code)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return CloudError(detail, code=code, retryable=code in THROTTLED or status >= 500)


@contextmanager
def cloud_errors(action: str) -> Iterator[None]:
    """Raise port errors, never botocore ones; transport failures are retryable."""
    try:
        yield
    except ClientError as error:
        raise translate_client_error(error, action) from error
    except BotoCoreError as error:
        raise CloudError(f"{action}: {error}", code=type(error).__name__, retryable=True) from error
