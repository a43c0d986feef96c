"""Run one SELECT on a SQLite store through ADBC and write the result as an Arrow IPC stream to stdout.

A separate process on purpose: the ADBC driver links its own copy of SQLite, and two copies of SQLite
in one process break POSIX file locking (closing one copy's handle drops the other's locks; other
connections then see "disk I/O error" or miss committed WAL pages). In its own process it is just
another reader of the database, as safe as any.

    python -m appliance.store._arrow_read DATABASE_PATH < query.sql > result.arrows
"""

from __future__ import annotations

import sys


def main() -> int:
    import adbc_driver_sqlite.dbapi as adbc_sqlite
    import pyarrow as pa

    path = sys.argv[1]
    sql = sys.stdin.read()
    conn = adbc_sqlite.connect(f"file:{path}?mode=ro")
    try:
        cur = conn.cursor()
        cur.execute(sql)
        table = cur.fetch_arrow_table()
        cur.close()
    finally:
        conn.close()
    with pa.ipc.new_stream(sys.stdout.buffer, table.schema) as writer:
        writer.write_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
