"""Scaling policies: ``default`` (SPEC §5, look-ahead), ``reactive`` and ``static`` baselines."""
