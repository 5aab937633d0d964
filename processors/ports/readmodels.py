"""The read-model storage port, as adapters see it.

The port is defined in ``projections/readmodel.py`` because projections (which may import
only the domain) write through it. Adapters may import processors but not projections
(SPEC §2), so they implement the port through this re-export (decision D6).
"""

from projections.readmodel import (
    Checkpoint,
    Document,
    Page,
    ReadModelStore,
    ReadModelTx,
    Table,
    Where,
    check_fields,
    decode_cursor,
    dumps,
    dumps_many,
    encode_cursor,
    index_value,
    index_values_of,
    iter_where,
    loads,
)

__all__ = [
    "Checkpoint", "Document", "Page", "ReadModelStore", "ReadModelTx", "Table", "Where",
    "check_fields", "decode_cursor", "dumps", "dumps_many", "encode_cursor", "index_value", "index_values_of",
    "iter_where", "loads",
]
