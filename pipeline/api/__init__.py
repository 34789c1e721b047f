"""HTTP API over the event store: events, evidence files, operator reviews and the audit log."""

from pipeline.api.app import create_app

__all__ = ["create_app"]
