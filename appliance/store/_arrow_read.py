"""Run SELECTs on a SQLite store through ADBC and write the results as Arrow IPC streams to stdout.

A separate process on purpose: the ADBC driver links its own copy of SQLite, and two copies of SQLite
in one process break POSIX file locking (closing one copy's handle drops the other's locks; other
connections then see "disk I/O error" or miss committed WAL pages). In its own process it is just
another reader of the database, as safe as any, and several of them read one table's row ranges on
several cores at once.

The child also does the column conversions (text times to timestamps, strings to dictionaries), in
Arrow's C++ kernels on its own core, so the parent receives compact, typed columns.

    python appliance/store/_arrow_read.py < request.json > results.bin

It imports nothing of the project (only the standard library, pyarrow and the ADBC driver), so the
parent runs the file directly and the child starts in about 0.4 s.

The request: ``{"database": PATH, "queries": [{"sql": ..., "convert": {"column": "time"|"category"}}]}``.
The answer: per query, an 8-byte little-endian length and then that many bytes of an IPC stream.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Mapping
from typing import Any

#: Rows per Arrow batch the driver builds: bigger batches cost less per row (default is 1024).
BATCH_ROWS = 65536


def convert(table: Any, spec: Mapping[str, str]) -> Any:
    """Apply the named conversions to a pyarrow Table (shared by the PostgreSQL path in the parent).

    ``time``: SQLite's DATETIME text (or a timestamp) to timestamp[us, UTC]; ``category``: a string
    column to a dictionary, with the empty string (the SQL side's COALESCE sentinel) as null.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for name, how in spec.items():
        i = table.schema.get_field_index(name)
        column = table.column(i)
        if how == "time":
            if pa.types.is_timestamp(column.type):  # stored as UTC; naive ones are UTC by convention
                column = column.cast(pa.timestamp("us", tz="UTC"))
            else:  # all-NULL or empty columns come back as null or int64
                if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                    column = column.cast(pa.string())
                column = column.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
        elif how == "category":
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                column = column.cast(pa.string())
            empty = pc.equal(column, "")
            column = pc.if_else(empty, pa.scalar(None, pa.string()), column)
            column = pc.dictionary_encode(column)
        else:
            raise ValueError(f"unknown conversion {how!r} for column {name!r}")
        table = table.set_column(i, name, column)
    return table


def main() -> int:
    import adbc_driver_sqlite.dbapi as adbc_sqlite
    import pyarrow as pa

    request = json.loads(sys.stdin.read())
    conn = adbc_sqlite.connect(f"file:{request['database']}?mode=ro")
    out = sys.stdout.buffer
    try:
        for query in request["queries"]:
            cur = conn.cursor()
            try:
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH_ROWS)})
                cur.execute(query["sql"])
                table = convert(cur.fetch_arrow_table(), query.get("convert", {}))
            finally:
                cur.close()
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            data = sink.getvalue()
            out.write(struct.pack("<Q", data.size))
            out.write(memoryview(data))
    finally:
        conn.close()
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
