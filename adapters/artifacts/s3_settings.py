"""Settings of the S3 artifact store, from ``LRM_S3_*`` environment variables.

Credentials left empty fall back to botocore's usual chain. For MinIO or moto set
``LRM_S3_ENDPOINT_URL`` (and ``LRM_S3_ADDRESSING_STYLE=path`` when the endpoint is a host
name rather than an IP address).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class S3Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LRM_S3_", extra="ignore")

    bucket: str = "lrm-artifacts"
    prefix: str = Field("", description="key prefix inside the bucket, e.g. 'prod/'")
    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    create_bucket: bool = Field(False, description="create the bucket on first use if missing")
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    max_attempts: int = Field(3, ge=1)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    read_timeout_seconds: float = Field(60.0, gt=0)

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_directory(cls, value: str) -> str:
        value = value.strip("/")
        return f"{value}/" if value else ""
