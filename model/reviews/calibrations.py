"""Each Label Studio project's refitted calibration, and the log of refits, in the review store:
where every replica sharing the store finds another's refit, and what /metrics counts across
restarts. A calibration is kept per (weights, project): one project's reviews never change another
project's scores."""

from __future__ import annotations

import time

from openautoglm.model.reviews.database import Database
from openautoglm.model.reviews.projects import project_identity

_SCHEMA = """CREATE TABLE IF NOT EXISTS project_calibrations (
    pipeline TEXT NOT NULL, project TEXT NOT NULL, digest TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (pipeline, project));
CREATE TABLE IF NOT EXISTS refits (at {real} NOT NULL, pipeline TEXT NOT NULL, result TEXT NOT NULL, digest TEXT)"""
# (refits.project is added by the review store's migration, inside its exclusive transaction)
_UPSERT = {"sqlite": "INSERT OR REPLACE INTO project_calibrations VALUES (?, ?, ?, ?)",
           "postgresql": "INSERT INTO project_calibrations VALUES (?, ?, ?, ?) ON CONFLICT (pipeline, project) "
                         "DO UPDATE SET digest = EXCLUDED.digest, body = EXCLUDED.body"}


def project_key(project: object) -> str:
    """A project as the store keys it: its id, from what Label Studio sends ("12.1700000000" with
    /predict: id.timestamp; the project object in webhooks; 12 in the API); "" for none."""
    return project_identity(project)[0]


class StoredCalibrations:
    def __init__(self, db: Database):
        self.db = db
        for statement in _SCHEMA.format(real=db.real).split(";"):
            db.execute(statement)

    def save(self, pipeline_version: str, project: object, digest: str, body: str) -> None:
        """The latest refit of these weights for this project."""
        self.db.execute(_UPSERT[self.db.dialect], (pipeline_version, project_key(project), digest, body))

    def get(self, pipeline_version: str, project: object) -> tuple[str, str] | None:
        """(digest, file content) of the project's latest refit, if any."""
        row = self.db.execute("SELECT digest, body FROM project_calibrations WHERE pipeline = ? AND project = ?",
                              (pipeline_version, project_key(project))).fetchone()
        return (row[0], row[1]) if row else None

    def digests(self, pipeline_version: str) -> dict[str, str]:
        """Each project's latest refit digest: one cheap query a replica polls."""
        return dict(self.db.execute("SELECT project, digest FROM project_calibrations WHERE pipeline = ?",
                                    (pipeline_version,)).fetchall())

    def log_refit(self, pipeline_version: str, project: object, result: str, digest: str | None = None) -> None:
        """A refit done or failed, kept so /metrics counts them across restarts and workers."""
        self.db.execute("INSERT INTO refits (at, pipeline, result, digest, project) VALUES (?, ?, ?, ?, ?)",
                        (time.time(), pipeline_version, result, digest, project_key(project)))

    def refit_log(self, project: object = None) -> list[tuple[float, str]]:
        """(time, result) of each refit (of the project, or all), oldest first."""
        query = "SELECT at, result FROM refits" + ("" if project is None else " WHERE project = ?") + " ORDER BY at"
        return [(at, result) for at, result in self.db.execute(query, () if project is None else
                                                                  (project_key(project),)).fetchall()]

    def refit_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT result, count(*) FROM refits GROUP BY result").fetchall())
