"""Live event streams (SSE): one shared log poller per process, and caps on open streams."""
