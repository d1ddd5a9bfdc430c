"""The event store's schema, as append-only numbered migrations.

Each migration runs in one transaction together with the row that records it, so a migration
killed half way leaves the store at the previous version, usable, and it runs again next time.
Never edit a released migration: append a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tutela.core.errors import StoreError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Any], None]  # receives a DuckDB connection inside a transaction


def _m001_events(db: Any) -> None:
    db.execute(
        """
        CREATE TABLE events (
            ts        TIMESTAMP NOT NULL,   -- UTC
            pillar    VARCHAR NOT NULL,     -- dns, runtime, posture, access, copilot
            source    VARCHAR,              -- client address, user, app, file
            subject   VARCHAR,              -- what was judged: a name, a redacted prompt hash, a path
            action    VARCHAR NOT NULL,     -- allow, alert, redact, sinkhole, block
            severity  TINYINT,              -- highest finding severity, NULL without findings
            category  VARCHAR,              -- category of the first finding
            tenant    VARCHAR,
            findings  JSON,
            attrs     JSON                  -- pillar-specific detail (qtype, latency, ...)
        )
        """
    )
    db.execute("CREATE TABLE ingested_segments (name VARCHAR PRIMARY KEY, rows BIGINT, ingested_at TIMESTAMP)")


def _m002_passive_dns(db: Any) -> None:
    # Passive DNS: one row per (name, type, answer) a sensor saw, upserted in batches.
    db.execute(
        """
        CREATE TABLE passive_dns (
            name       VARCHAR NOT NULL,    -- owner name, lower-case, no trailing dot
            rtype      VARCHAR NOT NULL,    -- A, AAAA, CNAME, NS, MX, ...
            answer     VARCHAR NOT NULL,    -- record data in presentation form
            first_seen TIMESTAMP NOT NULL,  -- UTC
            last_seen  TIMESTAMP NOT NULL,
            count      BIGINT NOT NULL,
            PRIMARY KEY (name, rtype, answer)
        )
        """
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events", _m001_events),
    Migration(2, "passive_dns", _m002_passive_dns),
)


def current_version(db: Any) -> int:
    exists = db.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return 0
    row = db.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(db: Any, path: str, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the store up to the newest migration; refuse a store from a newer tutela."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
    )
    version = current_version(db)
    newest = max((m.version for m in migrations), default=0)
    if version > newest:
        raise StoreError(
            f"event store {path} has schema v{version}, newer than this tutela knows (v{newest})",
            hint="upgrade tutela, or set TUTELA_HOME to another folder",
        )
    for m in sorted(migrations, key=lambda m: m.version):
        if m.version <= version:
            continue
        db.execute("BEGIN TRANSACTION")
        try:
            m.apply(db)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [m.version, m.name])
            db.execute("COMMIT")
        except Exception:
            db.execute("ROLLBACK")
            raise
        version = m.version
    return version
