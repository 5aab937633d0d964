"""Read models of the API: every module here with a ``PROJECTIONS`` sequence is run by the container."""
