"""What reviewers did with the predictions: matched per region against the human annotation
(IoU >= 0.5, same label) and kept in SQLite or PostgreSQL (`database.py`), the data calibration
learns from. Here in model/
because the server, the refit and the CLI (`calibrate --store`, `report`) all read it.

A webhook event is written to the store's event journal before it is acknowledged (Label Studio
never sends one twice), and matched from there in the background
(`backends/label_studio/review_events.py`); events left unmatched by a stop or a crash are
matched after the next start."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from openautoglm.converters import Box, Region
from openautoglm.model.reviews.annotations import Annotations
from openautoglm.model.reviews.calibrations import StoredCalibrations, project_key
from openautoglm.model.reviews.database import Database
from openautoglm.model.reviews.jobs import JobStore
from openautoglm.model.reviews.projects import ProjectRecords, project_identity
from openautoglm.model.reviews.store_schema import ADDED_COLUMNS, SCHEMA, UPSERT_FAILED, UPSERT_PREDICTION
from openautoglm.model.scores.evaluation import greedy_match
from openautoglm.model.scores.scoring import ImageEvidence

log = logging.getLogger(__name__)
# rows whose model_version is these weights' under any calibration ("<weights>+calibration-<digest>")
_BY_WEIGHTS = "(model_version = ? OR substr(model_version, 1, ?) = ?)"
# an outcome of prediction p's task (not of a replaced project's task of that id: model.reviews.projects)
_OF_TASK = "o.task_id = p.task_id AND (o.project IS NULL OR p.project IS NULL OR o.project = p.project)"
# a project's predictions by these weights whose task nobody has reviewed: (*_by_weights(...), project)
_OPEN_OF_PROJECT = f"{_BY_WEIGHTS} AND project = ? AND NOT EXISTS (SELECT 1 FROM outcomes o WHERE {_OF_TASK})"


def _of_project(project: object) -> tuple[str, tuple]:
    """The condition (and its argument) on rows of the project a webhook names or of none."""
    project_id = project_identity(project)[0]
    return (" AND (project IS NULL OR project = ?)", (project_id,)) if project_id else ("", ())


def _by_weights(pipeline_version: str) -> tuple:
    prefix = f"{pipeline_version}+calibration-"
    return pipeline_version, len(prefix), prefix


class ReviewStore:
    """`location`: a SQLite file path, or a `postgresql://` URL that several replicas share."""

    def __init__(self, location: str | Path):
        self.db = Database(location)
        self.path = Path(location) if self.db.dialect == "sqlite" else None
        with self.db.transaction(exclusive=True) as db:  # workers and replicas starting together
            for statement in filter(str.strip, SCHEMA[self.db.dialect].split(";")):
                db.execute(statement)
            self.calibrations = StoredCalibrations(self.db)  # each project's refit, and the refit log
            self._migrate(db)
        self.jobs = JobStore(self.db)  # prelabelling jobs that outlive a /predict
        self.annotations = Annotations(self.db)  # which annotation stands as each task's review
        self.projects = ProjectRecords(self.db)  # which Label Studio project each project id stands for

    @property
    def name(self) -> str:
        return self.db.name

    def _migrate(self, db: Database) -> None:
        outcomes_had_projects = "project" in db.columns("outcomes")
        for table, columns in ADDED_COLUMNS.items():
            present = db.columns(table)
            for name, declaration in columns:
                if name not in present:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration.format(real=db.real)}")
        if not outcomes_had_projects:  # a store from before per-project calibration: key what it holds
            raw = [row[0] for row in
                   db.execute("SELECT DISTINCT project FROM predictions WHERE project LIKE ?", ("%.%",))]
            db.executemany("UPDATE predictions SET project = ? WHERE project = ?",
                           [(project_key(project), project) for project in raw])
            db.execute("UPDATE outcomes SET project = (SELECT p.project FROM predictions p "
                       "WHERE p.task_id = outcomes.task_id)")

    def save_predictions(self, model_version: str,
                         predictions: list[tuple[Any, list[Region], ImageEvidence, float | None]],
                         audited: set | frozenset = frozenset(), project: Any = None,
                         results: dict | None = None, sizes: dict | None = None) -> None:
        """What was predicted per task (task_id, regions, their evidence, task score; `audited`: the
        task ids shown below the accept threshold for an audit), with what refitting needs (each
        region's raw detector score, the task's near-miss scores, a cascade's second-stage evidence
        where it looked), what drift reports compare (the scores shown), and what re-scoring after a
        refit sends Label Studio again (its project, and `results`: the task's Label Studio result
        by task id; `sizes`: its image's (width, height), for reviews whose results lack it), one
        transaction for a whole /predict batch."""
        results, sizes = results or {}, sizes or {}
        rows = [(str(task_id), model_version,
                 json.dumps([{"label": r.label, "box": list(r.box.bounds()), "score": r.confidence,
                              "raw": e.detector_score, "agreement": e.agreement}
                             for r, e in zip(regions, evidence.regions)]),
                 json.dumps(list(evidence.near_misses)), task_score, int(task_id in audited),
                 None if project is None else project_key(project),
                 json.dumps(results[task_id]) if task_id in results else None,
                 None if evidence.second_misses is None else json.dumps(list(evidence.second_misses)),
                 *sizes.get(task_id, (None, None)))
                for task_id, regions, evidence, task_score in predictions]
        with self.db.transaction() as db:
            db.executemany(UPSERT_PREDICTION[db.dialect], rows)

    def unreviewed(self, pipeline_version: str, project: object, current_version: str,
                   limit: int = 500) -> list[dict]:
        """Stored predictions of the project by these weights, made under another calibration than
        `current_version`, for tasks nobody has reviewed yet, with the Label Studio result to send
        again: what re-scoring after the project's refit works through, oldest first; empty once all
        are done."""
        rows = self.db.execute(
            f"SELECT task_id, project, regions, near_misses, result, second_misses, sending FROM predictions p WHERE "
            f"{_OPEN_OF_PROJECT} AND model_version != ? AND result IS NOT NULL ORDER BY p.{self.db.order} LIMIT ?",
            (*_by_weights(pipeline_version), project_key(project), current_version, limit)).fetchall()
        return [{"task_id": task_id, "project": project, "regions": json.loads(regions),
                 "near_misses": json.loads(near_misses or "[]"), "result": json.loads(result),
                 "second_misses": json.loads(second) if second is not None else None, "sending": sending}
                for task_id, project, regions, near_misses, result, second, sending in rows]

    def open_evidence(self, pipeline_version: str, project: object, limit: int = 2000) -> list[ImageEvidence]:
        """The evidence of the project's latest `limit` predicted tasks by these weights nobody has
        reviewed: where a refit's prior still stands in for reviews (`fit_outcomes(unreviewed=)`)."""
        rows = self.db.execute(
            f"SELECT regions, near_misses, second_misses FROM predictions p WHERE {_OPEN_OF_PROJECT} "
            f"ORDER BY p.{self.db.order} DESC LIMIT ?",
            (*_by_weights(pipeline_version), project_key(project), limit)).fetchall()
        return [stored_evidence(json.loads(regions), json.loads(near or "[]"), json.loads(second) if second else None)
                for regions, near, second in rows]

    def open_task_scores(self, project: object = None) -> list[float]:
        """The task scores of predicted tasks nobody has reviewed (the project's, or all): the queue."""
        query = ("SELECT task_score FROM predictions p WHERE task_score IS NOT NULL AND NOT EXISTS "
                 f"(SELECT 1 FROM outcomes o WHERE {_OF_TASK})")
        if project is None:
            return [score for (score,) in self.db.execute(query).fetchall()]
        return [score for (score,) in self.db.execute(query + " AND project = ?", (project_key(project),)).fetchall()]

    def mark_sending(self, model_version: str, task_ids: list[Any]) -> None:
        """These tasks' re-scored predictions are about to go to Label Studio under `model_version`:
        a pass cut short before `rescored` asks Label Studio whether they arrived (no duplicates)."""
        with self.db.transaction() as db:
            db.executemany("UPDATE predictions SET sending = ? WHERE task_id = ?",
                           [(model_version, str(task_id)) for task_id in task_ids])

    def rescored(self, model_version: str, rows: list[tuple[str, list[dict], float, dict | list]]) -> None:
        """Re-scored predictions (task_id, regions with new scores, task score, result) under `model_version`."""
        with self.db.transaction() as db:
            db.executemany("UPDATE predictions SET model_version = ?, regions = ?, task_score = ?, result = ?, "
                           "sending = NULL WHERE task_id = ?",
                           [(model_version, json.dumps(regions), task_score, json.dumps(result), str(task_id))
                            for task_id, regions, task_score, result in rows])

    def forget(self, task_id: Any) -> None:
        """A task's stored prediction, once its task is gone from Label Studio."""
        self.db.execute("DELETE FROM predictions WHERE task_id = ?", (str(task_id),))

    def prediction(self, task_id: Any, project: object = None) -> tuple[str, list[dict]] | None:
        """(model version, regions) of the task's stored prediction; with `project` (as a webhook
        names it), only one made for that project or for none (not a replaced project's task)."""
        where, args = _of_project(project)
        row = self.db.execute("SELECT model_version, regions FROM predictions WHERE task_id = ?" + where,
                              (str(task_id), *args)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def image_size(self, task_id: Any) -> tuple[int, int] | None:
        """The predicted image's (width, height), where it was stored."""
        row = self.db.execute("SELECT width, height FROM predictions WHERE task_id = ?", (str(task_id),)).fetchone()
        return (row[0], row[1]) if row and row[0] else None

    def record(self, annotation_id: Any, task_id: Any, model_version: str | None, rows: list[tuple]) -> None:
        """A review's outcomes, under the project its task's prediction was made for."""
        with self.db.transaction() as db:
            found = db.execute("SELECT project FROM predictions WHERE task_id = ?", (str(task_id),)).fetchone()
            self.delete([annotation_id], found[0] if found else None)  # an update replaces (joins this transaction)
            # one 'task' row besides the regions' rows: a reviewed task with nothing predicted and
            # nothing drawn is a right empty task, and must not vanish from what refitting sees
            db.executemany("INSERT INTO outcomes (annotation_id, task_id, model_version, label, score, matched, kind, "
                           "raw_score, agreement, project) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(str(annotation_id), str(task_id), model_version, *row, found[0] if found else None)
                            for row in [*rows, ("", None, 1, "task", None, None)]])

    def delete(self, annotation_ids: list[Any], project: object = None) -> None:
        """These annotations' outcomes; with `project`, not a replaced project's annotations of those ids."""
        where, args = _of_project(project)
        with self.db.transaction() as db:
            db.executemany("DELETE FROM outcomes WHERE annotation_id = ?" + where,
                           [(str(i), *args) for i in annotation_ids])

    def clear_reviews(self, task_id: Any, project: object = None) -> None:
        """A task's outcomes, whichever annotation they came from (before the standing one's); with
        `project`, not those a replaced project's task of that id left (`prediction`)."""
        where, args = _of_project(project)
        self.db.execute("DELETE FROM outcomes WHERE task_id = ?" + where, (str(task_id), *args))

    def save_event(self, event: dict) -> None:
        """Durable once this returns: committed to the journal (SQLite WAL or PostgreSQL; survives the
        process dying)."""
        self.db.execute("INSERT INTO events (body, received) VALUES (?, ?)", (json.dumps(event), time.time()))

    def pending_events(self) -> int:
        return self.db.execute("SELECT count(*) FROM events").fetchone()[0]

    def handle_pending(self, handle, limit: int = 64) -> int:
        """Hand up to `limit` journalled events, oldest first, to `handle(event)` and remove them,
        all in one exclusive transaction (the store's writes in `handle` join it): workers and
        replicas never handle events out of order or twice. An event whose handling fails moves to
        failed_events with the reason."""
        with self.db.transaction(exclusive=True) as db:
            rows = db.execute("SELECT id, body FROM events ORDER BY id LIMIT ?", (limit,)).fetchall()
            for event_id, body in rows:
                try:
                    handle(json.loads(body))
                except Exception as error:  # one bad event must not stop the others
                    log.exception("webhook event %s could not be handled", event_id)
                    db.execute(UPSERT_FAILED[db.dialect], (event_id, body, repr(error)))
                db.execute("DELETE FROM events WHERE id = ?", (event_id,))
        return len(rows)

    def reviewed_tasks(self, pipeline_version: str | None = None, project: object = None) -> list[dict]:
        """Per reviewed annotation, what refitting needs: the predicted regions' raw scores and
        whether each was right, how many objects were missed, and the task's near-miss scores.
        `pipeline_version`: only reviews of predictions by these weights (whatever the calibration:
        the raw scores are the weights'); `project`: only that project's reviews."""
        query = ("SELECT o.annotation_id, o.model_version, o.raw_score, o.score, o.matched, o.kind, p.near_misses, "
                 "p.task_score, p.audited, o.agreement, p.second_misses, o.label FROM outcomes o "
                 f"LEFT JOIN predictions p ON {_OF_TASK}"
                 + ("" if project is None else " WHERE coalesce(o.project, '') = ?") + f" ORDER BY o.{self.db.order}")
        tasks: dict[str, dict] = {}
        for row in self.db.execute(query, () if project is None else (project_key(project),)).fetchall():
            (annotation, version, raw, shown, matched, kind, near_misses, task_score, audited, agreement, second,
             label) = row
            if pipeline_version is not None and (version or "").split("+calibration-")[0] != pipeline_version:
                continue
            task = tasks.setdefault(annotation, {"model_version": version, "scores": [], "shown_scores": [],
                                                 "correct": [], "missed": 0, "task_score": task_score,
                                                 "audited": bool(audited),
                                                 "near_misses": json.loads(near_misses or "[]"),
                                                 "agreement": [], "labels": [],
                                                 "second_misses": json.loads(second) if second is not None else None})
            if kind == "missed":
                task["missed"] += 1
            elif kind == "prediction" and raw is not None:
                task["scores"].append(raw)
                task["shown_scores"].append(shown)
                task["correct"].append(bool(matched))
                task["agreement"].append(agreement)
                task["labels"].append(label)
        return list(tasks.values())

    def reviewed_count(self, pipeline_version: str) -> dict[str, int]:
        """How many reviewed tasks each project has of predictions by these weights (any calibration);
        reviews of predictions made without a project are under ""."""
        rows = self.db.execute(
            f"SELECT coalesce(project, ''), count(DISTINCT annotation_id) FROM outcomes WHERE kind = 'task' AND "
            f"{_BY_WEIGHTS} GROUP BY coalesce(project, '')", _by_weights(pipeline_version)).fetchall()
        return dict(rows)

    def counts(self) -> dict:
        """What /metrics reads on every scrape: reviewed tasks, refits by result, skipped annotations."""
        (reviewed,) = self.db.execute("SELECT count(DISTINCT annotation_id) FROM outcomes WHERE kind = 'task'"
                                      ).fetchone()
        return {"reviewed_tasks": reviewed, "refits": self.calibrations.refit_counts(),
                "skipped": self.annotations.cancelled()}

    def project_versions(self) -> dict[str, str]:
        """Each project's latest model version, as its predictions were stored (raw project field)."""
        rows = self.db.execute(f"SELECT project, model_version, MAX({self.db.order}) FROM predictions "
                               "WHERE project IS NOT NULL GROUP BY project, model_version").fetchall()
        return {project: version for project, version, _ in sorted(rows, key=lambda row: row[2])}

    def outcomes(self) -> list[dict]:
        """Every region's outcome (predictions and missed objects), oldest first."""
        names = ("annotation_id", "task_id", "model_version", "label", "score", "matched", "kind", "raw_score",
                 "agreement")
        rows = self.db.execute(f"SELECT {', '.join(names)} FROM outcomes WHERE kind != 'task' "
                               f"ORDER BY {self.db.order}").fetchall()
        return [dict(zip(names, row)) for row in rows]


def open_store(location: str | Path) -> ReviewStore:
    """An existing store for the CLI: a SQLite file must exist (a typo must not create an empty
    one), a PostgreSQL URL must answer."""
    from openautoglm.model.errors import ModelError
    from openautoglm.model.reviews.database import is_url

    if not is_url(location) and not Path(location).is_file():
        raise ModelError(f"review store {location} does not exist")
    try:
        return ReviewStore(location)
    except Exception as error:  # noqa: BLE001 - unreachable server, bad credentials, not a store
        raise ModelError(f"cannot open review store {Database(location).name}: {error}") from None


def stored_evidence(regions: list[dict], near_misses: list[float], second_misses: list[float] | None) -> ImageEvidence:
    """A stored task's evidence as scoring reads it."""
    return ImageEvidence.of_scores([r["raw"] for r in regions], near_misses, [r.get("agreement") for r in regions],
                                   second_misses, [r.get("label") for r in regions])


def match(predicted: list[dict], annotated: list[Region]) -> list[tuple]:
    """(label, score, matched, kind, raw score, second-stage agreement) per predicted region, plus one 'missed' row per
    human region no prediction matched. Greedy by prediction score, as COCO evaluation does."""
    ordered = sorted(predicted, key=lambda p: -(p["score"] or 0))
    boxed = [r for r in annotated if r.box is not None]
    matches = greedy_match([(p["label"], Box(*p["box"])) for p in ordered],
                           [(r.label, Box(*r.box.bounds())) for r in boxed])
    rows = [(p["label"], p["score"], int(m is not None), "prediction", p.get("raw", p["score"]), p.get("agreement"))
            for p, m in zip(ordered, matches)]
    used = set(matches)
    return rows + [(r.label, None, 0, "missed", None, None) for i, r in enumerate(boxed) if i not in used]
