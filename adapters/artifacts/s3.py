"""An artifact store in an S3 bucket (AWS, MinIO, moto), through aiobotocore.

URIs are ``s3://<bucket>/<prefix><key>``. The client is opened lazily in the running event
loop (or with ``async with``) and belongs to that loop; synchronous callers go through
``adapters.artifacts.blocking.BlockingArtifactStore``, which owns a loop of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from adapters.artifacts.s3_settings import S3Settings
from adapters.aws_session import LazyAwsClient
from processors.ports.artifacts import (
    ArtifactError,
    ArtifactNotFound,
    BaseArtifactStore,
    InvalidArtifactKey,
    validate_key,
)

# HEAD answers carry no body, so a missing object (or bucket, for head_bucket) is a bare 404.
MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
THROTTLED = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"})


class S3ArtifactStore(BaseArtifactStore):
    def __init__(self, settings: S3Settings | None = None, *, session: AioSession | None = None) -> None:
        self.settings = settings or S3Settings()
        self.bucket = self.settings.bucket
        self.prefix = self.settings.prefix
        self._aws = LazyAwsClient(
            "s3",
            self.settings,
            session,
            config={"s3": {"addressing_style": self.settings.addressing_style}},
            on_open=self._ensure_bucket if self.settings.create_bucket else None,
        )

    async def __aenter__(self) -> S3ArtifactStore:
        await self._s3()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._aws.aclose()

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{validate_key(key)}"

    async def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        object_key = self._object_key(key)
        s3 = await self._s3()
        with _artifact_errors(f"put {key}"):
            await s3.put_object(
                Bucket=self.bucket, Key=object_key, Body=bytes(data), ContentType=content_type
            )
        return f"s3://{self.bucket}/{object_key}"

    async def get(self, uri_or_key: str) -> bytes:
        object_key = self._object_key(uri_or_key)
        s3 = await self._s3()
        try:
            with _artifact_errors(f"get {uri_or_key}"):
                response = await s3.get_object(Bucket=self.bucket, Key=object_key)
                async with response["Body"] as body:
                    return bytes(await body.read())
        except _Missing:
            raise ArtifactNotFound(f"no artifact {uri_or_key!r}") from None

    async def exists(self, uri_or_key: str) -> bool:
        object_key = self._object_key(uri_or_key)
        s3 = await self._s3()
        try:
            with _artifact_errors(f"head {uri_or_key}"):
                await s3.head_object(Bucket=self.bucket, Key=object_key)
        except _Missing:
            return False
        return True

    async def delete(self, uri_or_key: str) -> None:
        object_key = self._object_key(uri_or_key)
        s3 = await self._s3()
        with _artifact_errors(f"delete {uri_or_key}"):
            await s3.delete_object(Bucket=self.bucket, Key=object_key)  # S3: no error when absent

    # -- internals --------------------------------------------------------------------

    def _object_key(self, uri_or_key: str) -> str:
        if uri_or_key.startswith("s3://"):
            bucket, _, object_key = uri_or_key[len("s3://") :].partition("/")
            if bucket != self.bucket or not object_key.startswith(self.prefix):
                raise InvalidArtifactKey(f"{uri_or_key!r} is not in s3://{self.bucket}/{self.prefix}")
            return self.prefix + validate_key(object_key[len(self.prefix) :])
        if "://" in uri_or_key:
            raise InvalidArtifactKey(f"not a key or an s3 URI: {uri_or_key!r}")
        return self.prefix + validate_key(uri_or_key)

    async def _s3(self) -> Any:
        return await self._aws.get()

    async def _ensure_bucket(self, s3: Any) -> None:
        try:
            with _artifact_errors(f"head bucket {self.bucket}"):
                await s3.head_bucket(Bucket=self.bucket)
            return
        except _Missing:
            pass
        request: dict[str, Any] = {"Bucket": self.bucket}
        if self.settings.region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": self.settings.region}
        try:
            await s3.create_bucket(**request)
        except ClientError as error:
            # Another process won the race: fine, the bucket is ours either way.
            if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise _translate(error, f"create bucket {self.bucket}") from error


class _Missing(Exception):
    """Internal: the object (or bucket) does not exist."""


def _translate(error: ClientError, action: str) -> ArtifactError:
    info = error.response.get("Error", {})
    code = str(info.get("Code", ""))
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    retryable = code in THROTTLED or status >= 500
    return ArtifactError(f"{action}: {code}: {info.get('Message', '')}".rstrip(": "), retryable=retryable)


@contextmanager
def _artifact_errors(action: str) -> Iterator[None]:
    try:
        yield
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code", "")) in MISSING:
            raise _Missing() from error
        raise _translate(error, action) from error
    except BotoCoreError as error:
        raise ArtifactError(f"{action}: {error}", retryable=True) from error
