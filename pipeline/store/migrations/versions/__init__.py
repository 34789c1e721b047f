"""Event store migration scripts."""
