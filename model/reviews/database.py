"""The review store's database: a SQLite file (the default: one machine, any number of server
workers) or PostgreSQL (a `postgresql://` URL: several server replicas sharing one store), behind
one small interface so the store's SQL is written once, with `?` placeholders.

Connections are per thread and in autocommit; `transaction()` groups statements (nested calls
join the outer one). `transaction(exclusive=True)` also serialises against every other process:
SQLite takes the write lock at BEGIN (BEGIN IMMEDIATE), PostgreSQL a transaction advisory lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

EXCLUSIVE_LOCK = 0x6F61676C  # PostgreSQL advisory lock id for exclusive transactions ("oagl")


def is_url(location: str | Path) -> bool:
    return str(location).startswith(("postgresql://", "postgres://"))


class Database:
    def __init__(self, location: str | Path):
        self.location = str(location)
        self.dialect = "postgresql" if is_url(location) else "sqlite"
        self._local = threading.local()
        if self.dialect == "sqlite":
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)

    @property
    def name(self) -> str:
        """For messages: the file name, or the URL without its password."""
        if self.dialect == "sqlite":
            return Path(self.location).name
        parts = urlsplit(self.location)
        host = parts.hostname or ""
        return urlunsplit((parts.scheme, f"{parts.username + '@' if parts.username else ''}{host}"
                           f"{':' + str(parts.port) if parts.port else ''}", parts.path, "", ""))

    @property
    def real(self) -> str:
        """The column type of a float: SQLite's REAL is 8 bytes, PostgreSQL's only 4."""
        return "REAL" if self.dialect == "sqlite" else "DOUBLE PRECISION"

    @property
    def order(self) -> str:
        """The column that orders rows by insertion."""
        return "rowid" if self.dialect == "sqlite" else "seq"

    def connection(self):
        db = getattr(self._local, "db", None)
        if db is not None and self.dialect == "postgresql" and (db.closed or db.broken) and not self._local.depth:
            db = None  # the server restarted or the network dropped: a new connection, not errors forever
        if db is None:
            db = self._open()
            self._local.db, self._local.depth = db, 0
        return db

    def _open(self):
        if self.dialect == "postgresql":
            try:
                import psycopg
            except ImportError:
                raise RuntimeError("the review store is a PostgreSQL URL but psycopg is not installed: "
                                   "pip install 'openautoglm[postgres]'") from None
            return psycopg.connect(self.location, autocommit=True, connect_timeout=10)
        db = sqlite3.connect(self.location, timeout=30, isolation_level=None)
        _switch_to_wal(db)  # several gunicorn workers write here
        # FULL: a transaction is on disk when it commits, so an acknowledged webhook survives a power
        # loss too (NORMAL could lose the last ones); 0.1 ms a commit here, against 0.01 ms
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()):
        return self.connection().execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, rows: list[Sequence[Any]]) -> None:
        if not rows:
            return
        if self.dialect == "postgresql":
            with self.connection().cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)
        else:
            self.connection().executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator["Database"]:
        db = self.connection()
        if self._local.depth:  # inside this thread's transaction already: join it
            yield self
            return
        self._local.depth = 1
        try:
            if self.dialect == "postgresql":
                with db.transaction():
                    if exclusive:
                        db.execute("SELECT pg_advisory_xact_lock(%s)", (EXCLUSIVE_LOCK,))
                    yield self
            else:
                db.execute("BEGIN IMMEDIATE")  # the write lock now, waiting out the busy timeout
                try:
                    yield self
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        finally:
            self._local.depth = 0

    @contextlib.contextmanager
    def try_lock(self, key: int) -> Iterator[bool]:
        """A session lock across every process using this database, not waited for: yields whether
        this one got it (PostgreSQL advisory lock; SQLite: always True, one machine has file locks)."""
        if self.dialect != "postgresql":
            yield True
            return
        db = self.connection()
        got = db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]
        try:
            yield bool(got)
        finally:
            if got:
                db.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def columns(self, table: str) -> set[str]:
        if self.dialect == "postgresql":
            rows = self.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                                "AND table_schema = current_schema()", (table,))
            return {row[0] for row in rows}
        return {row[1] for row in self.execute(f"PRAGMA table_info({table})")}


def _switch_to_wal(db: sqlite3.Connection, attempts: int = 100) -> None:
    """Workers starting together all switch a new file to WAL; SQLite answers "database is
    locked" to the losers at once, without waiting out the busy timeout, so they retry."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
