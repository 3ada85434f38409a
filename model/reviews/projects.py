"""Which Label Studio project a project id in the store stands for.

Label Studio numbers projects, tasks and annotations from 1 in every database, so two Label
Studios on one backend, or one whose database was created anew, reuse ids the store already
holds. What tells them apart is what Label Studio itself sends its ML backends as a project's
identity: "<id>.<creation second>" with /setup and /predict (and /setup's `hostname`), and the
project object with its `created_at` in every webhook.

The store keeps, for each project id, the creation second of the project it belongs to:
- a project seen for the first time is recorded (an older store's rows are taken to be its);
- a project created later than the recorded one replaced it (a new database): the old project's
  predictions, reviews, refits, calibration and jobs are kept under "<id>@<old second>", out of
  every figure of the new project, which starts from the pipeline's calibration;
- a project created earlier than the recorded one is refused with the reason (a second Label
  Studio, or an old database restored): its reviews would mix with another project's.
A bare id (the command line, Label Studio's API) names the recorded project.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from openautoglm.model.reviews.database import Database

log = logging.getLogger(__name__)
_SCHEMA = """CREATE TABLE IF NOT EXISTS label_studio_projects (
    project TEXT PRIMARY KEY, created BIGINT NOT NULL, host TEXT, seen {real} NOT NULL)"""
# the store's tables that are kept per project: a replaced project's rows move to its retired key
_PROJECT_TABLES = ("predictions", "outcomes", "project_calibrations", "refits")


class ForeignProject(Exception):
    """A project that is not the one the store holds under its id (created earlier than it)."""


def project_identity(project: Any) -> tuple[str, int | None]:
    """(id, creation second) of a project as Label Studio sends it: "12.1733400000" (its ML API),
    a webhook's project object, or a bare id (no creation second)."""
    if isinstance(project, dict):
        created = project.get("created_at")
        return str(project.get("id", "")), _seconds(created) if isinstance(created, str) else None
    text = "" if project is None else str(project)
    head, _, tail = text.partition(".")
    return head, int(tail) if tail.isdigit() else None


def retired_key(project_id: str, created: int) -> str:
    return f"{project_id}@{created}"


def is_retired(key: str) -> bool:
    """A replaced project's key: its rows are kept for the record, never refitted or re-scored."""
    return "@" in key


def _seconds(iso: str) -> int | None:
    """Label Studio's `int(created_at.timestamp())` from the ISO text a webhook carries."""
    try:
        return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


class ProjectRecords:
    def __init__(self, db: Database):
        self.db = db
        db.execute(_SCHEMA.format(real=db.real))

    def observe(self, project: Any, host: str | None = None) -> str | None:
        """Check a project Label Studio sent against the one recorded under its id; retire the
        recorded one if this one replaced it. The retired key, when this call retired one; raises
        ForeignProject for a project older than the recorded one."""
        project_id, created = project_identity(project)
        if created is None or not project_id.isdigit():
            return None  # a bare id names the recorded project
        known = self.db.execute("SELECT created, host FROM label_studio_projects WHERE project = ?",
                                (project_id,)).fetchone()
        if known is not None and known[0] == created and host in (None, known[1]):
            return None  # the usual case: a read, no write
        with self.db.transaction(exclusive=True) as tx:
            row = tx.execute("SELECT created, host FROM label_studio_projects WHERE project = ?",
                             (project_id,)).fetchone()
            if row is not None and row[0] > created:
                raise ForeignProject(
                    f"project {project_id} created at {_when(created)}{_at(host)} is not the project {project_id} "
                    f"this backend's store holds (created at {_when(row[0])}{_at(row[1])}): a second Label Studio "
                    "or an older database; give each Label Studio its own store (OPENAUTOGLM_STORE)")
            retired = retired_key(project_id, row[0]) if row is not None and row[0] < created else None
            if retired:
                _retire(tx, project_id, retired)
            tx.execute("DELETE FROM label_studio_projects WHERE project = ?", (project_id,))
            tx.execute("INSERT INTO label_studio_projects VALUES (?, ?, ?, ?)",
                       (project_id, created, host or (row[1] if row and row[0] == created else None), time.time()))
        if retired:
            log.warning("project %s was created anew at %s%s (a new Label Studio database): the store's project %s "
                        "is kept as %s and the new one starts from the pipeline's calibration",
                        project_id, _when(created), _at(host), project_id, retired)
        return retired

    def recorded(self) -> dict[str, tuple[int, str | None]]:
        """Each project id -> (creation second, Label Studio host if /setup named it)."""
        return {project: (created, host) for project, created, host in
                self.db.execute("SELECT project, created, host FROM label_studio_projects").fetchall()}


def _retire(tx: Database, project_id: str, retired: str) -> None:
    """Move a replaced project's rows to its retired key: its jobs stop, its tasks are not held,
    and the annotations kept for its tasks are forgotten (the new database reuses their ids)."""
    of_jobs = "(project = ? OR project LIKE ?)"  # a job keeps the project as Label Studio sent it
    job_keys = (project_id, f"{project_id}.%")
    for (job,) in tx.execute(f"SELECT id FROM jobs WHERE {of_jobs} AND state IN ('running', 'answering')",
                             job_keys).fetchall():
        tx.execute("DELETE FROM job_pages WHERE job = ?", (job,))
        tx.execute("UPDATE jobs SET state = 'failed', error = ?, updated = ? WHERE id = ?",
                   (f"its Label Studio project was replaced; kept as {retired}", time.time(), job))
    tx.execute(f"DELETE FROM job_tasks WHERE job IN (SELECT id FROM jobs WHERE {of_jobs})", job_keys)
    tx.execute(f"UPDATE jobs SET project = ? WHERE {of_jobs}", (retired, *job_keys))
    tx.execute("DELETE FROM annotations WHERE task_id IN (SELECT task_id FROM predictions WHERE project = ?)",
               (project_id,))
    for table in _PROJECT_TABLES:
        tx.execute(f"UPDATE {table} SET project = ? WHERE project = ?", (retired, project_id))  # noqa: S608


def _when(created: int) -> str:
    return datetime.fromtimestamp(created).astimezone().isoformat(timespec="seconds")


def _at(host: str | None) -> str:
    return f" on {host}" if host else ""
