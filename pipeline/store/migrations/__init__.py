"""Alembic environment of the event store (a package so it ships with an installed `pipeline`)."""
