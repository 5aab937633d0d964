"""Settings of the EC2 provider, from ``LRM_AWS_*`` environment variables.

Credentials left empty fall back to botocore's usual chain (environment, profile, instance
role). ``endpoint_url`` points at moto or LocalStack in tests and demos.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Ec2Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LRM_AWS_", extra="ignore")

    region: str = "us-east-1"
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    ami_owners: list[str] = Field(default_factory=lambda: ["self"], description="AMI owners searched")
    ami_tags: dict[str, str] = Field(
        default_factory=dict, description="tags an AMI must carry to be chosen (e.g. Product=cml)"
    )
    subnet_id: str | None = None
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    iam_instance_profile: str | None = Field(None, description="instance profile name")
    max_attempts: int = Field(3, ge=1, description="botocore attempts per call (standard retry mode)")
    connect_timeout_seconds: float = Field(5.0, gt=0)
    read_timeout_seconds: float = Field(30.0, gt=0)
