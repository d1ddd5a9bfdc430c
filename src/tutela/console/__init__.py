"""The web console over the event store."""
