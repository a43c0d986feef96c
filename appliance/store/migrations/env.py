"""Alembic environment: runs on the connection the store hands over, inside its transaction.

There is no alembic.ini: :func:`appliance.store.store._migrate` builds the config in
code with ``script_location`` pointing here, so migrations work from an installed
package. New revision (from the repo root)::

    python -c "from alembic.config import Config; from alembic import command; \\
    c = Config(); c.set_main_option('script_location', 'appliance/store/migrations'); \\
    command.revision(c, 'what changed', rev_id='0002_what_changed')"
"""

from __future__ import annotations

from alembic import context

from appliance.store.store import VERSION_TABLE
from appliance.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "store migrations run through appliance.store (Store.create / Store.open), not the CLI"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
