"""Label Studio's annotations as it means them, before any becomes a review outcome:

- a skipped task is an annotation with `was_cancelled: true` (and an empty result): no review of
  the prediction, counted apart;
- the newest state of an annotation wins by its `updated_at`, not by the order events arrive in
  (an ANNOTATION_UPDATED may overtake the older ANNOTATION_CREATED);
- a deleted annotation is remembered, so an event about it arriving late cannot bring it back;
- a task with several annotations (several annotators, or a ground truth set by a manager) has one
  review standing for it: its ground-truth annotation, else the newest one not cancelled.

The result is kept with each annotation, so when the standing one is deleted or cancelled the next
one stands in its place without Label Studio sending it again."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from openautoglm.model.reviews.database import Database

_SCHEMA = """CREATE TABLE IF NOT EXISTS annotations (
    annotation_id TEXT PRIMARY KEY, task_id TEXT NOT NULL, updated {real} NOT NULL, state TEXT NOT NULL,
    ground_truth INTEGER NOT NULL, result TEXT);
CREATE INDEX IF NOT EXISTS annotations_task ON annotations (task_id)"""
REVIEW, CANCELLED, DELETED = "review", "cancelled", "deleted"


def updated_at(annotation: dict, received: float) -> float:
    """An annotation's `updated_at` (else `created_at`) as seconds; the arrival time when neither
    is there or readable."""
    for key in ("updated_at", "created_at"):
        value = annotation.get(key)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return received


class Annotations:
    def __init__(self, db: Database):
        self.db = db
        with db.transaction(exclusive=True) as tx:
            for statement in _SCHEMA.format(real=db.real).split(";"):
                tx.execute(statement)

    def save(self, annotation_id: Any, task_id: Any, updated: float, cancelled: bool, ground_truth: bool,
             result: list) -> bool:
        """Keep this state of an annotation unless a newer one is known or it was deleted; whether it
        was kept (False: a stale event, nothing changes)."""
        with self.db.transaction() as tx:
            known = tx.execute("SELECT updated, state FROM annotations WHERE annotation_id = ?",
                               (str(annotation_id),)).fetchone()
            if known is not None and (known[1] == DELETED or known[0] > updated):
                return False
            tx.execute("DELETE FROM annotations WHERE annotation_id = ?", (str(annotation_id),))
            tx.execute("INSERT INTO annotations VALUES (?, ?, ?, ?, ?, ?)",
                       (str(annotation_id), str(task_id), updated, CANCELLED if cancelled else REVIEW,
                        int(ground_truth), json.dumps(result)))
        return True

    def delete(self, annotation_ids: list[Any], when: float) -> set[str]:
        """Remember these annotations as deleted (known or not yet seen); the tasks they belonged to."""
        tasks = set()
        with self.db.transaction() as tx:
            for annotation_id in map(str, annotation_ids):
                row = tx.execute("SELECT task_id FROM annotations WHERE annotation_id = ?",
                                 (annotation_id,)).fetchone()
                tx.execute("DELETE FROM annotations WHERE annotation_id = ?", (annotation_id,))
                tx.execute("INSERT INTO annotations VALUES (?, ?, ?, ?, 0, NULL)",
                           (annotation_id, row[0] if row else "", when, DELETED))
                if row:
                    tasks.add(row[0])
        return tasks

    def standing(self, task_id: Any) -> tuple[str, list] | None:
        """(annotation id, result) of the review standing for the task, if any."""
        row = self.db.execute("SELECT annotation_id, result FROM annotations WHERE task_id = ? AND state = ? "
                              "ORDER BY ground_truth DESC, updated DESC LIMIT 1", (str(task_id), REVIEW)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def cancelled(self) -> int:
        """Annotations whose latest state is a skip."""
        return self.db.execute("SELECT COUNT(*) FROM annotations WHERE state = ?", (CANCELLED,)).fetchone()[0]
