"""Declarative mappings: stored events into outbox commands."""
