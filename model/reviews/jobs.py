"""Prelabelling jobs in the review store: tasks to predict in the background and import into a
Label Studio project, kept as pages that any worker of any replica claims, so a large job uses
every worker and outlives the worker that queued it: a page whose worker went silent for
PAGE_LEASE_S (killed, say) is claimed again, and a restarted server goes on with the pages left.

A task a job holds is not predicted again by another request while the job runs and for LEASE_S
after it ended, since Label Studio may have listed the task as lacking a prediction just before
the job imported it. A task whose import failed is released at once; the next Retrieve
Predictions predicts it.

A large /predict is a job too, in state 'answering': its pages are predicted by every worker and
their entries kept here for the request to answer with, until the request stops waiting (its
time budget); from then on the job is an ordinary one and the pages left are imported."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

from openautoglm.model.reviews.database import Database

LEASE_S = 60.0  # an ended job's tasks are released this long after its end
PAGE_LEASE_S = 600.0  # a claimed page is claimed again after this long without news (a slow VLM page fits)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, project TEXT, model_version TEXT NOT NULL, total INTEGER NOT NULL,
    predicted INTEGER NOT NULL, imported INTEGER NOT NULL, failed INTEGER NOT NULL, state TEXT NOT NULL,
    error TEXT, started {real} NOT NULL, updated {real} NOT NULL, config TEXT, feeding INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS job_tasks (task_id TEXT PRIMARY KEY, job TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_pages (
    job TEXT NOT NULL, number INTEGER NOT NULL, tasks TEXT NOT NULL, claimed {real}, PRIMARY KEY (job, number));
CREATE TABLE IF NOT EXISTS job_answers (
    job TEXT NOT NULL, number INTEGER NOT NULL, entries TEXT NOT NULL, PRIMARY KEY (job, number))
"""
LIVE = "j.state IN ('running', 'answering')"
_FIELDS = ("id", "project", "model_version", "total", "predicted", "imported", "failed", "state", "error", "started",
           "updated")


class JobStore:
    def __init__(self, db: Database):
        self.db = db
        with db.transaction(exclusive=True) as tx:
            for statement in filter(str.strip, _SCHEMA.format(real=db.real).split(";")):
                tx.execute(statement)

    def held(self, task_ids: list[Any], now: float | None = None) -> set[str]:
        """The tasks among these that a live job holds (answered by its import, not predicted again)."""
        if not task_ids:
            return set()
        now = time.time() if now is None else now
        marks = ", ".join("?" for _ in task_ids)
        rows = self.db.execute(
            f"SELECT t.task_id FROM job_tasks t JOIN jobs j ON j.id = t.job WHERE t.task_id IN ({marks}) "
            f"AND ({LIVE} OR j.updated >= ?)", (*map(str, task_ids), now - LEASE_S)).fetchall()
        return {row[0] for row in rows}

    def start(self, project: Any, model_version: str, tasks: list[dict], config: str = "",
              page_size: int = 8, feeding: bool = False, answering: bool = False) -> tuple[str, list[dict]]:
        """A new job for those of `tasks` (Label Studio task objects) no live job holds, queued in
        pages: (its id, the tasks it took). `feeding`: more pages follow (`feed`, then `fed`);
        `answering`: a request waits for its pages (`page_answered`, `answers`, `stop_answering`)."""
        job, now = uuid.uuid4().hex[:12], time.time()
        with self.db.transaction(exclusive=True) as tx:
            busy = self.held([t["id"] for t in tasks], now)
            mine = [t for t in tasks if str(t["id"]) not in busy]
            tx.execute("INSERT INTO jobs VALUES (?, ?, ?, 0, 0, 0, 0, ?, NULL, ?, ?, ?, ?)",
                       (job, None if project is None else str(project), model_version,
                        "answering" if answering else "running", now, now, config, int(feeding)))
            self._queue(tx, job, mine, page_size, 0)
            _finish_if_done(tx, job)
        return job, mine

    def feed(self, job: str, tasks: list[dict], page_size: int = 8) -> None:
        """More pages for a feeding job (a whole project, read a page at a time)."""
        with self.db.transaction(exclusive=True) as tx:
            (last,) = tx.execute("SELECT MAX(number) FROM job_pages WHERE job = ?", (job,)).fetchone()
            self._queue(tx, job, tasks, page_size, 0 if last is None else last + 1)

    def fed(self, job: str, error: str | None = None) -> None:
        """No more pages will come; a job with none left (or that failed feeding) ends here."""
        with self.db.transaction(exclusive=True) as tx:
            tx.execute("UPDATE jobs SET feeding = 0, updated = ? WHERE id = ?", (time.time(), job))
            if error:
                tx.execute("DELETE FROM job_pages WHERE job = ?", (job,))
            _finish_if_done(tx, job, error)

    def _queue(self, tx: Database, job: str, tasks: list[dict], page_size: int, first: int) -> None:
        """New tasks of the job: held by it, counted in its total, in pages numbered from `first`."""
        if not tasks:
            return
        ids = [str(t["id"]) for t in tasks]
        tx.execute(f"DELETE FROM job_tasks WHERE task_id IN ({', '.join('?' for _ in ids)})", ids)
        tx.executemany("INSERT INTO job_tasks VALUES (?, ?)", [(task, job) for task in ids])
        _pages(tx, job, tasks, page_size, first)
        tx.execute("UPDATE jobs SET total = total + ?, updated = ? WHERE id = ?", (len(tasks), time.time(), job))

    def claim(self, now: float | None = None, job: str | None = None) -> dict | None:
        """The oldest page nobody works on (or whose worker went silent), a waiting request's first
        (of `job` alone if given): job, number, project, config, tasks; None when there is none."""
        now = time.time() if now is None else now
        claimable = "(p.claimed IS NULL OR p.claimed < ?)" + ("" if job is None else " AND p.job = ?")
        arguments = (now - PAGE_LEASE_S,) + (() if job is None else (job,))
        if self.db.execute(f"SELECT 1 FROM job_pages p WHERE {claimable} LIMIT 1", arguments).fetchone() is None:
            return None  # the usual answer of an idle poll, without the store's write lock
        with self.db.transaction(exclusive=True) as tx:
            row = tx.execute("SELECT p.job, p.number, p.tasks, j.project, j.config FROM job_pages p "
                             f"JOIN jobs j ON j.id = p.job WHERE {claimable} "
                             "ORDER BY j.state = 'answering' DESC, j.started, p.number LIMIT 1", arguments).fetchone()
            if row is None:
                return None
            tx.execute("UPDATE job_pages SET claimed = ? WHERE job = ? AND number = ?", (now, row[0], row[1]))
            tx.execute("UPDATE jobs SET updated = ? WHERE id = ?", (now, row[0]))
        return {"job": row[0], "number": row[1], "tasks": json.loads(row[2]), "project": row[3], "config": row[4]}

    def page_done(self, job: str, number: int, imported: int, failed_tasks: list[Any] = ()) -> None:
        """Count a page, release the tasks whose import failed, and end the job after its last page."""
        with self.db.transaction(exclusive=True) as tx:
            tx.execute("DELETE FROM job_pages WHERE job = ? AND number = ?", (job, number))
            tx.execute("UPDATE jobs SET predicted = predicted + ?, imported = imported + ?, failed = failed + ?, "
                       "updated = ? WHERE id = ?",
                       (imported + len(failed_tasks), imported, len(failed_tasks), time.time(), job))
            if failed_tasks:
                marks = ", ".join("?" for _ in failed_tasks)
                tx.execute(f"DELETE FROM job_tasks WHERE job = ? AND task_id IN ({marks})",
                           (job, *map(str, failed_tasks)))
            _finish_if_done(tx, job)

    def page_answered(self, job: str, number: int, entries: list[dict]) -> bool:
        """Keep a predicted page's entries for the request waiting on its job; False when the
        request stopped waiting (the page is then imported and counted by `page_done`)."""
        with self.db.transaction(exclusive=True) as tx:
            if tx.execute("SELECT 1 FROM jobs WHERE id = ? AND state = 'answering'", (job,)).fetchone() is None:
                return False
            tx.execute("DELETE FROM job_pages WHERE job = ? AND number = ?", (job, number))
            tx.execute("INSERT INTO job_answers VALUES (?, ?, ?)", (job, number, json.dumps(entries)))
            tx.execute("UPDATE jobs SET predicted = predicted + ?, updated = ? WHERE id = ?",
                       (len(entries), time.time(), job))
        return True

    def pages_left(self, job: str) -> int:
        return self.db.execute("SELECT COUNT(*) FROM job_pages WHERE job = ?", (job,)).fetchone()[0]

    def stop_answering(self, job: str, page_tasks: Callable[[int], int]) -> tuple[dict[int, list[dict]], list[dict]]:
        """The request answers now: its answered pages' entries (their tasks stay held a lease
        longer, while Label Studio saves them), and the tasks left, queued again in import pages
        of `page_tasks(how many are left)` (a page being predicted is imported by its worker)."""
        with self.db.transaction(exclusive=True) as tx:
            answered = {number: json.loads(entries) for number, entries in tx.execute(
                "SELECT number, entries FROM job_answers WHERE job = ?", (job,)).fetchall()}
            tx.execute("DELETE FROM job_answers WHERE job = ?", (job,))
            rows = tx.execute("SELECT number, tasks FROM job_pages WHERE job = ? AND claimed IS NULL ORDER BY number",
                              (job,)).fetchall()
            left = [task for _, tasks in rows for task in json.loads(tasks)]
            tx.execute("DELETE FROM job_pages WHERE job = ? AND claimed IS NULL", (job,))
            (last,) = tx.execute("SELECT MAX(number) FROM job_pages WHERE job = ?", (job,)).fetchone()
            tx.execute("UPDATE jobs SET state = 'running', updated = ? WHERE id = ?", (time.time(), job))
            _pages(tx, job, left, page_tasks(len(left)), 0 if last is None else last + 1)  # held and counted
            _finish_if_done(tx, job)
        return answered, left

    def pending_pages(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM job_pages").fetchone()[0]

    def recent(self, limit: int = 50) -> list[dict]:
        """The latest jobs, newest first; a running one silent past its lease is reported as 'stalled'
        (its pages are claimed again by the next worker that looks)."""
        rows = self.db.execute(f"SELECT {', '.join(_FIELDS)} FROM jobs ORDER BY started DESC LIMIT ?",
                               (limit,)).fetchall()
        jobs = [dict(zip(_FIELDS, row)) for row in rows]
        for job in jobs:
            if job["state"] == "running" and job["updated"] < time.time() - PAGE_LEASE_S:
                job["state"] = "stalled"
        return jobs


def _pages(tx: Database, job: str, tasks: list[dict], page_size: int, first: int) -> None:
    tx.executemany("INSERT INTO job_pages VALUES (?, ?, ?, NULL)",
                   [(job, first + n, json.dumps(tasks[start:start + page_size]))
                    for n, start in enumerate(range(0, len(tasks), page_size))])


def _finish_if_done(tx: Database, job: str, error: str | None = None) -> None:
    """A job ends with its last page, once no more pages come and no request waits on it."""
    (left,) = tx.execute("SELECT COUNT(*) FROM job_pages WHERE job = ?", (job,)).fetchone()
    feeding, state = tx.execute("SELECT feeding, state FROM jobs WHERE id = ?", (job,)).fetchone()
    if error or (not left and not feeding and state != "answering"):
        tx.execute("UPDATE jobs SET state = ?, error = ?, updated = ? WHERE id = ?",
                   ("failed" if error else "done", error, time.time(), job))
