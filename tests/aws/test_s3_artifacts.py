"""The S3 artifact store against the moto server, through the shared contract."""

from __future__ import annotations

from collections.abc import AsyncIterator

from typing import Any

import boto3
import pytest

from adapters.artifacts.s3 import S3ArtifactStore
from adapters.artifacts.s3_settings import S3Settings
from processors.ports.artifacts import ArtifactError, InvalidArtifactKey
from tests.artifacts.contract import ArtifactStoreContract
from tests.aws.conftest import CREDENTIALS, REGION

BUCKET = "lrm-test-artifacts"


def s3_settings(endpoint: str, **overrides: object) -> S3Settings:
    fields: dict[str, object] = {
        "bucket": BUCKET,
        "region": REGION,
        "endpoint_url": endpoint,
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "create_bucket": True,
        "max_attempts": 1,
    }
    return S3Settings(**{**fields, **overrides})  # type: ignore[arg-type]


@pytest.fixture
async def store(moto_endpoint: str, aio_session: Any) -> AsyncIterator[S3ArtifactStore]:
    async with S3ArtifactStore(s3_settings(moto_endpoint, prefix="env1"), session=aio_session) as s3:
        yield s3


class TestS3ArtifactStore(ArtifactStoreContract):
    uri_scheme = "s3"


pytestmark = pytest.mark.anyio


@pytest.fixture
def s3_admin(moto_endpoint: str) -> Any:
    return boto3.client("s3", region_name=REGION, endpoint_url=moto_endpoint, **CREDENTIALS)


async def test_objects_land_under_the_prefix_with_their_content_type(
    store: S3ArtifactStore, s3_admin: Any
) -> None:
    uri = await store.put("reports/r1.json", b"{}", "application/json")
    assert uri == f"s3://{BUCKET}/env1/reports/r1.json"
    head = s3_admin.head_object(Bucket=BUCKET, Key="env1/reports/r1.json")
    assert head["ContentType"] == "application/json"


async def test_uris_of_another_bucket_or_prefix_are_refused(store: S3ArtifactStore) -> None:
    await store.put("k", b"v")
    for uri in ("s3://other-bucket/env1/k", f"s3://{BUCKET}/k", f"s3://{BUCKET}/env1/../k"):
        with pytest.raises(InvalidArtifactKey):
            await store.get(uri)


async def test_the_bucket_is_created_once_in_any_region(
    moto_endpoint: str, aio_session: Any, s3_admin: Any
) -> None:
    settings = s3_settings(moto_endpoint, region="eu-west-1", bucket="lrm-eu")
    async with S3ArtifactStore(settings, session=aio_session) as first:
        await first.put("k", b"v")
    async with S3ArtifactStore(settings, session=aio_session) as second:  # bucket exists: fine
        assert await second.get("k") == b"v"
    assert s3_admin.get_bucket_location(Bucket="lrm-eu")["LocationConstraint"] == "eu-west-1"


async def test_without_create_bucket_a_missing_bucket_is_an_error(
    moto_endpoint: str, aio_session: Any
) -> None:
    settings = s3_settings(moto_endpoint, bucket="absent", create_bucket=False)
    async with S3ArtifactStore(settings, session=aio_session) as s3:
        with pytest.raises(ArtifactError) as caught:
            await s3.put("k", b"v")
    assert "NoSuchBucket" in caught.value.detail
    assert not caught.value.retryable


async def test_an_unreachable_endpoint_is_retryable(aio_session: Any) -> None:
    settings = s3_settings("http://127.0.0.1:9", create_bucket=False, connect_timeout_seconds=1)
    async with S3ArtifactStore(settings, session=aio_session) as s3:
        with pytest.raises(ArtifactError) as caught:
            await s3.get("k")
    assert caught.value.retryable


def test_the_blocking_facade_drives_s3_from_threads(moto_endpoint: str) -> None:
    from adapters.artifacts.blocking import BlockingArtifactStore

    with BlockingArtifactStore(S3ArtifactStore(s3_settings(moto_endpoint))) as s3:
        uri = s3.put("sync/k", b"v")
        assert s3.get(uri) == b"v"
