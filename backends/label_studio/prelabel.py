"""Pre-annotate a whole Label Studio project through its API, however large: its tasks are read a
page at a time, those already holding this model version's prediction are skipped, the rest are
predicted (by one process or several) and imported a page at a time. Killed and run again, it
goes on with the tasks that have no prediction yet: nothing is predicted into the project twice."""

from __future__ import annotations

import logging
from collections import deque
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


def as_job_tasks(tasks: list[dict]) -> list[dict]:
    """Label Studio tasks as a job keeps and predicts them: their id and data, nothing else (the
    annotations and predictions Label Studio lists with them are not needed and can be large)."""
    return [{"id": t["id"], "data": t.get("data")} for t in tasks]


@dataclass
class PagePrediction:
    predictions: list[dict]  # import entries: task, result, score, model_version
    failed: int  # tasks whose image could not be read


class PagePredictor:
    """A page of tasks -> its import entries, a model batch's images decoded at a time."""

    def __init__(self, predictor: Predictor, project: str):
        self.predictor, self.project = predictor, project
        self.model_version = predictor.scoring(project)[1]  # the project's: its own calibration's, if refitted

    def __call__(self, tasks: list[dict], config: str) -> PagePrediction:
        size, page = self.predictor.batch_size, PagePrediction([], 0)
        for start in range(0, len(tasks), size):
            outcomes = self.predictor.predict(tasks[start:start + size], config, None, self.project)
            page.failed += sum(1 for o in outcomes if o.error)
            page.predictions += [{"task": o.task_id, "result": o.result, "score": o.score,
                                  "model_version": o.model_version} for o in outcomes]
        return page


def prelabel_project(client: LabelStudioClient, engine, project: str, page_size: int = 100,
                     on_page=None) -> PrelabelCounts:
    """`engine` predicts pages (cli.prelabel_engines: here, in processes or on Ray), a few at a time;
    each is imported as soon as it is done, in order. `on_page(counts, total)` after every page
    read and every page imported (a progress bar)."""
    config, version = client.label_config(project), engine.model_version
    counts, total, in_flight = PrelabelCounts(), 0, deque()

    def finish() -> None:
        page = in_flight.popleft().result()
        counts.predicted += len(page.predictions)
        counts.failed += page.failed
        client.import_predictions(project, page.predictions)  # one import per page of tasks
        counts.imported += len(page.predictions)
        if on_page is not None:
            on_page(counts, total)

    for tasks, total in client.task_pages(project, page_size):
        counts.tasks += len(tasks)
        todo = lacking(tasks, version)
        counts.skipped += len(tasks) - len(todo)
        if todo:
            in_flight.append(engine.submit(as_job_tasks(todo), config))
        while len(in_flight) > engine.slots:
            finish()
        if on_page is not None:
            on_page(counts, total)
    while in_flight:
        finish()
    log.info("project %s: %d tasks, %d already predicted, %d predicted and imported (%d with an unreadable image)",
             project, counts.tasks, counts.skipped, counts.imported, counts.failed)
    return counts
