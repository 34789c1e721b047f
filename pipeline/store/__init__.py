"""Event store: events, operator reviews, audit log and evidence retention in SQLite or PostgreSQL."""

from pipeline.store.service import (
    ACTIONS,
    AuditEntry,
    EventNotFound,
    EventStore,
    Review,
    StoredEvent,
    alembic_config,
    migrate,
)

__all__ = ["ACTIONS", "AuditEntry", "EventNotFound", "EventStore", "Review", "StoredEvent", "alembic_config", "migrate"]
