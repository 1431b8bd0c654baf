"""Alembic environment for the hub: migrations run on a connection the caller passes in
(``hub.store.migrate``), never on a URL read from a file."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only ``hub migrate`` runs these
    raise RuntimeError("run migrations with `hub migrate`, not the alembic command")
context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
