"""projections layer of the Lablet Resource Manager (see docs/architecture.md)."""
