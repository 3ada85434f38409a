"""What reviewers did with the predictions: matched per region against the human annotation
(IoU >= 0.5, same label) and kept in SQLite, the data calibration learns from.

Webhooks return at once; a worker thread does the matching from a queue."""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from openautoglm.converters import Box, Region
from openautoglm.converters.geometry import box_iou
from openautoglm.converters.label_studio import parse_result

log = logging.getLogger(__name__)
MATCH_IOU = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    task_id TEXT PRIMARY KEY, model_version TEXT NOT NULL, regions TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outcomes (
    annotation_id TEXT NOT NULL, task_id TEXT NOT NULL, model_version TEXT, label TEXT NOT NULL,
    score REAL, matched INTEGER NOT NULL, kind TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS outcomes_annotation ON outcomes (annotation_id);
"""


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


class ReviewStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            _switch_to_wal(db)  # several gunicorn workers write here
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (opening one costs more than most writes)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("PRAGMA synchronous=NORMAL")  # with WAL: no fsync per request, still never corrupt
            self._local.db = db
        return db

    def save_predictions(self, model_version: str, predictions: list[tuple[Any, list[Region]]]) -> None:
        """What was predicted per task, one transaction for a whole /predict batch."""
        rows = [(str(task_id), model_version,
                 json.dumps([{"label": r.label, "box": list(r.box.bounds()), "score": r.score} for r in regions]))
                for task_id, regions in predictions]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)", rows)

    def prediction(self, task_id: Any) -> tuple[str, list[dict]] | None:
        with self._connect() as db:
            row = db.execute("SELECT model_version, regions FROM predictions WHERE task_id = ?", (str(task_id),)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def record(self, annotation_id: Any, task_id: Any, model_version: str | None, rows: list[tuple]) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM outcomes WHERE annotation_id = ?", (str(annotation_id),))  # an update replaces
            db.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
                           [(str(annotation_id), str(task_id), model_version, *row) for row in rows])

    def delete(self, annotation_ids: list[Any]) -> None:
        with self._connect() as db:
            db.executemany("DELETE FROM outcomes WHERE annotation_id = ?", [(str(i),) for i in annotation_ids])

    def outcomes(self) -> list[dict]:
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM outcomes ORDER BY rowid")]


def match(predicted: list[dict], annotated: list[Region]) -> list[tuple]:
    """(label, score, matched, kind) per predicted region, plus one 'missed' row per human region
    no prediction matched. Greedy by prediction score, as COCO evaluation does."""
    rows, used = [], set()
    for prediction in sorted(predicted, key=lambda p: -(p["score"] or 0)):
        box = Box(*prediction["box"])
        best, best_iou = None, MATCH_IOU
        for index, region in enumerate(annotated):
            if index in used or region.label != prediction["label"] or region.box is None:
                continue
            overlap = box_iou(box, Box(*region.box.bounds()))
            if overlap >= best_iou:
                best, best_iou = index, overlap
        if best is not None:
            used.add(best)
        rows.append((prediction["label"], prediction["score"], int(best is not None), "prediction"))
    rows += [(r.label, None, 0, "missed") for i, r in enumerate(annotated) if i not in used and r.box is not None]
    return rows


class ReviewWorker:
    """Handles webhook events off the request thread, one at a time, in arrival order."""

    def __init__(self, store: ReviewStore):
        self.store = store
        self.events: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="openautoglm-reviews", daemon=True)
        self.thread.start()

    def submit(self, event: dict) -> None:
        self.events.put(event)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every submitted event is handled (tests, shutdown)."""
        done = threading.Event()
        self.events.put(done)
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            event = self.events.get()
            if isinstance(event, threading.Event):
                event.set()
                continue
            try:
                self.handle(event)
            except Exception:  # one bad event must not stop the worker
                log.exception("webhook event %s could not be handled", event.get("action"))

    def handle(self, event: dict) -> None:
        action = event.get("action")
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            annotation = event.get("annotation") or {}
            task_id = (event.get("task") or {}).get("id", annotation.get("task"))
            stored = self.store.prediction(task_id)
            if stored is None:
                log.info("annotation %s: no prediction stored for task %s", annotation.get("id"), task_id)
                return
            regions = [r for result in annotation.get("result") or [] for r in parse_result(result, 1, 1, "human", None)]
            self.store.record(annotation.get("id"), task_id, stored[0], match(stored[1], regions))
        elif action == "ANNOTATIONS_DELETED":
            self.store.delete([a.get("id") for a in event.get("annotations") or []])
