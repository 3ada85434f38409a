"""Prelabelling jobs in the review store: the tasks of a /predict that did not fit Label Studio's
time window, predicted in the background and imported into the project. Every worker and replica
sees them: a task a job holds is not predicted again by another request while the job runs (its
heartbeat newer than LEASE_S) and for LEASE_S after it ended, since Label Studio may have listed
the task as lacking a prediction just before the job imported it. A task whose import failed is
released at once, and a job whose worker died releases its tasks when its lease runs out; the
next Retrieve Predictions predicts them."""

from __future__ import annotations

import time
import uuid
from typing import Any

from openautoglm.model.reviews.database import Database

LEASE_S = 60.0  # a running job updates its row at least this often
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, project TEXT, model_version TEXT NOT NULL, total INTEGER NOT NULL,
    predicted INTEGER NOT NULL, imported INTEGER NOT NULL, failed INTEGER NOT NULL, state TEXT NOT NULL,
    error TEXT, started {real} NOT NULL, updated {real} NOT NULL);
CREATE TABLE IF NOT EXISTS job_tasks (task_id TEXT PRIMARY KEY, job TEXT NOT NULL)
"""
_FIELDS = ("id", "project", "model_version", "total", "predicted", "imported", "failed", "state", "error", "started",
           "updated")


class JobStore:
    def __init__(self, db: Database):
        self.db = db
        real = "REAL" if db.dialect == "sqlite" else "DOUBLE PRECISION"
        with db.transaction(exclusive=True) as tx:
            for statement in filter(str.strip, _SCHEMA.format(real=real).split(";")):
                tx.execute(statement)

    def held(self, task_ids: list[Any], now: float | None = None) -> set[str]:
        """The tasks among these that a live job holds (answered by its import, not predicted again)."""
        if not task_ids:
            return set()
        now = time.time() if now is None else now
        marks = ", ".join("?" for _ in task_ids)
        rows = self.db.execute(
            f"SELECT t.task_id FROM job_tasks t JOIN jobs j ON j.id = t.job WHERE t.task_id IN ({marks}) "
            "AND j.updated >= ?", (*map(str, task_ids), now - LEASE_S)).fetchall()
        return {row[0] for row in rows}

    def start(self, project: Any, model_version: str, task_ids: list[Any]) -> tuple[str, list[str]]:
        """A new running job holding those of `task_ids` no live job holds: (its id, the tasks it holds)."""
        job, now = uuid.uuid4().hex[:12], time.time()
        with self.db.transaction(exclusive=True) as tx:
            busy = self.held(task_ids, now)
            mine = [str(t) for t in task_ids if str(t) not in busy]
            tx.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, 0, 0, 0, 'running', NULL, ?, ?)",
                       (job, None if project is None else str(project), model_version, len(mine), now, now))
            if mine:  # tasks of dead jobs change hands
                tx.execute(f"DELETE FROM job_tasks WHERE task_id IN ({', '.join('?' for _ in mine)})", mine)
                tx.executemany("INSERT INTO job_tasks VALUES (?, ?)", [(task, job) for task in mine])
        return job, mine

    def progress(self, job: str, predicted: int = 0, imported: int = 0, failed_tasks: list[Any] = ()) -> None:
        """Count a page (this also renews the lease); the tasks whose import failed are released."""
        with self.db.transaction() as tx:
            tx.execute("UPDATE jobs SET predicted = predicted + ?, imported = imported + ?, failed = failed + ?, "
                       "updated = ? WHERE id = ?", (predicted, imported, len(failed_tasks), time.time(), job))
            _release(tx, job, failed_tasks)

    def count(self, job: str, total: int = 0, predicted: int = 0, imported: int = 0, failed: int = 0) -> None:
        """Add to a job's counts (a project job learns its total page by page); renews the lease."""
        self.db.execute("UPDATE jobs SET total = total + ?, predicted = predicted + ?, imported = imported + ?, "
                        "failed = failed + ?, updated = ? WHERE id = ?",
                        (total, predicted, imported, failed, time.time(), job))

    def finish(self, job: str, error: str | None = None, unfinished: list[Any] = ()) -> None:
        """`unfinished`: the tasks a failed job never imported, released at once."""
        with self.db.transaction() as tx:
            tx.execute("UPDATE jobs SET state = ?, error = ?, updated = ? WHERE id = ?",
                       ("failed" if error else "done", error, time.time(), job))
            _release(tx, job, unfinished)

    def recent(self, limit: int = 50) -> list[dict]:
        """The latest jobs, newest first; a running one whose lease ran out is reported as 'lost'."""
        rows = self.db.execute(f"SELECT {', '.join(_FIELDS)} FROM jobs ORDER BY started DESC LIMIT ?",
                               (limit,)).fetchall()
        jobs = [dict(zip(_FIELDS, row)) for row in rows]
        for job in jobs:
            if job["state"] == "running" and job["updated"] < time.time() - LEASE_S:
                job["state"] = "lost"
        return jobs


def _release(tx: Database, job: str, task_ids: list[Any]) -> None:
    if task_ids:
        marks = ", ".join("?" for _ in task_ids)
        tx.execute(f"DELETE FROM job_tasks WHERE job = ? AND task_id IN ({marks})", (job, *map(str, task_ids)))
