"""Runs migrations on the connection the store hands over in `config.attributes["connection"]`."""

from alembic import context

from pipeline.store.models import Base

context.configure(connection=context.config.attributes["connection"], target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
