"""Alembic migrations of the store; run by :func:`appliance.store.store._migrate`, never by hand."""
