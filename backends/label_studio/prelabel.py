"""Pre-annotate a whole Label Studio project through its API, however large: its tasks are read a
page at a time, those already holding this model version's prediction are skipped, the rest are
predicted and imported a page at a time. Killed and run again, it goes on with the tasks that
have no prediction yet: nothing is predicted into the project twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .client import LabelStudioClient
from .predictor import Predictor

log = logging.getLogger(__name__)


@dataclass
class PrelabelCounts:
    tasks: int = 0  # in the project
    skipped: int = 0  # already holding this model version's prediction
    predicted: int = 0
    imported: int = 0
    failed: int = 0  # their image could not be read: imported with no result and score 0, so they sort first


def lacking(tasks: list[dict], version: str) -> list[dict]:
    """The tasks (as Label Studio lists them) holding no prediction of this model version."""
    return [t for t in tasks if not any(p.get("model_version") == version for p in t.get("predictions") or [])]


def prelabel_project(client: LabelStudioClient, predictor: Predictor, project: str, page_size: int = 100,
                     on_page=None) -> PrelabelCounts:
    """`on_page(counts, total)` after every page (a progress bar)."""
    config, version = client.label_config(project), predictor.model_version
    counts = PrelabelCounts()
    for tasks, total in client.task_pages(project, page_size):
        counts.tasks += len(tasks)
        todo = lacking(tasks, version)
        counts.skipped += len(tasks) - len(todo)
        predictions = []
        for start in range(0, len(todo), predictor.batch_size):  # a model batch's images decoded at a time
            outcomes = predictor.predict(todo[start:start + predictor.batch_size], config)
            counts.predicted += len(outcomes)
            counts.failed += sum(1 for o in outcomes if o.error)
            predictions += [{"task": o.task_id, "result": o.result, "score": o.score, "model_version": version}
                            for o in outcomes]
        if predictions:  # one import per page of tasks
            client.import_predictions(project, predictions)
            counts.imported += len(predictions)
        if on_page is not None:
            on_page(counts, total)
    log.info("project %s: %d tasks, %d already predicted, %d predicted and imported (%d with an unreadable image)",
             project, counts.tasks, counts.skipped, counts.imported, counts.failed)
    return counts
