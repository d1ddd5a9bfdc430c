"""The event store: every verdict of every pillar, in one schema (see docs/architecture.md)."""

from tutela.core.store.store import EventStore
from tutela.core.store.writer import EventWriter, event_row

__all__ = ["EventStore", "EventWriter", "event_row"]
