"""Artifact stores: ``local`` (a directory, the default) and ``s3`` (aiobotocore)."""
