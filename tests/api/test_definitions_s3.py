"""Definitions with ``LRM_ARTIFACTS=s3``: the lab YAML goes to the bucket (moto server over HTTP)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.api.test_templates_support import ADMIN, API, assert_problem, control_client, definition_body, head

BUCKET = "lrm-api-artifacts"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ACCESS_KEY_ID": "testing", "SECRET_ACCESS_KEY": "testing", "REGION": "us-east-1",
                        "CREATE_BUCKET": "true", "PREFIX": "env1", "MAX_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(f"LRM_S3_{name}", value)


def test_publish_and_read_back_through_s3(tmp_path: Path, moto_endpoint: str, s3_env: None) -> None:
    with control_client(tmp_path, artifacts="s3", s3_bucket=BUCKET, s3_endpoint_url=moto_endpoint) as (
        client, container,
    ):
        body = definition_body()
        response = client.post(f"{API}/definitions", headers=ADMIN, json=body)
        assert response.status_code == 201, response.text
        sha = hashlib.sha256(body["lab_yaml"].encode()).hexdigest()
        key = f"env1/lab-yaml/ccna-basic-routing/{sha}.yaml"
        assert response.json()["lab_yaml_uri"] == f"s3://{BUCKET}/{key}"

        s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode() == body["lab_yaml"]
        assert not (tmp_path / "artifacts").exists()

        lab = client.get(f"{API}/definitions/ccna-basic-routing/versions/1.0.0/lab.yaml", headers=ADMIN)
        assert lab.text == body["lab_yaml"]

        # An object uploaded next to it is referenced by key and copied to its content address.
        s3.put_object(Bucket=BUCKET, Key="env1/uploads/lab.yaml", Body=body["lab_yaml"].encode() + b"# v2\n")
        by_reference = {k: v for k, v in definition_body().items() if k not in ("lab_yaml", "version")}
        again = client.post(f"{API}/definitions", headers=ADMIN,
                            json={**by_reference, "lab_artifact_uri": f"s3://{BUCKET}/env1/uploads/lab.yaml"})
        assert again.status_code == 201, again.text
        assert again.json()["version"] == "1.0.1"

        before = head(container)
        wrong_bucket = client.post(f"{API}/definitions", headers=ADMIN,
                                   json={**by_reference, "lab_artifact_uri": "s3://someone-else/lab.yaml"})
        assert_problem(wrong_bucket, 422, "lab_artifact_uri")
        assert head(container) == before
