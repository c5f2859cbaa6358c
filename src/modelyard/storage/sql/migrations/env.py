"""Alembic environment: runs on the connection modelyard hands over (see ``migrate.upgrade``)."""

from alembic import context

from modelyard.storage.sql.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
