"""botocore failures become the port's errors (no AWS needed)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from adapters.cloud.ec2_errors import cloud_errors
from processors.ports.cloud import AmiNotFound, CloudCapacityError, CloudError, CloudNotFound


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("code", "status", "kind", "retryable"),
    [
        ("InvalidInstanceID.NotFound", 400, CloudNotFound, False),
        ("InvalidInstanceID.Malformed", 400, CloudNotFound, False),
        ("InsufficientInstanceCapacity", 500, CloudCapacityError, True),
        ("InstanceLimitExceeded", 400, CloudCapacityError, True),
        ("VcpuLimitExceeded", 400, CloudCapacityError, True),
        ("InvalidAMIID.NotFound", 400, AmiNotFound, False),
        ("RequestLimitExceeded", 503, CloudError, True),
        ("InternalError", 500, CloudError, True),
        ("IncorrectInstanceState", 400, CloudError, False),
        ("UnauthorizedOperation", 403, CloudError, False),
    ],
)
def test_client_errors(code: str, status: int, kind: type[CloudError], retryable: bool) -> None:
    with pytest.raises(CloudError) as caught, cloud_errors("act"):
        raise client_error(code, status)
    assert type(caught.value) is kind
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert isinstance(caught.value.__cause__, ClientError)


def test_transport_errors_are_retryable() -> None:
    with pytest.raises(CloudError) as caught, cloud_errors("act"):
        raise EndpointConnectionError(endpoint_url="http://nowhere")
    assert caught.value.retryable and caught.value.code == "EndpointConnectionError"
