"""Cloud providers: ``simulated`` (default, virtual-clock friendly) and ``ec2`` (aiobotocore)."""
