"""Re-scoring the open queue after a refit: every stored prediction of a task nobody has reviewed
yet gets the new calibration's scores from its stored raw scores and near misses (no model run),
and goes back to Label Studio as a new prediction under the new model version (bulk import), so
the queue's order and score filters follow; then the project moves to that version.

Batched and paced so Label Studio keeps serving its annotators; resumable, because the store
marks each task re-scored only after Label Studio has taken it: a pass cut short by a stop or an
error is finished by the next one (after the next refit, or the next start's first refit check).
"""

from __future__ import annotations

import logging
import time
from typing import Callable
from urllib.parse import urljoin

import requests

from openautoglm.model.scores import scoring
from openautoglm.model.reviews.store import ReviewStore, stored_evidence

from .project_version import ProjectVersionSync, label_studio_project_id
from .routing import route

log = logging.getLogger(__name__)


class TaskGone(Exception):
    """Label Studio refused an import because a task of it no longer exists."""


class QueueRescorer:
    BATCH = 200  # tasks per import request
    PAUSE_S = 0.05  # between requests: 10,000 tasks pause 2.5 s in all

    def __init__(self, label_studio_url: str | None, auth_header: Callable[[], dict], store: ReviewStore,
                 accept_above: float | None, audit_share: float, version_sync: ProjectVersionSync | None = None,
                 counter=None, timeout_s: float = 60.0):
        self.url, self.auth_header, self.store = label_studio_url, auth_header, store
        self.accept_above, self.audit_share = accept_above, audit_share
        self.version_sync, self.counter, self.timeout_s = version_sync, counter, timeout_s
        self.session = requests.Session()
        self.session.trust_env = False
        self.last: dict = {}  # the latest pass: tasks, seconds, error

    def rescore(self, pipeline) -> dict:
        calibration, version = pipeline.calibration, pipeline.model_version
        started, done, projects, error = time.perf_counter(), 0, set(), None
        while self.url and calibration is not None:
            rows = self.store.unreviewed(pipeline.version, version, self.BATCH)
            if not rows:
                break
            by_project: dict[str, list] = {}
            for row in rows:
                by_project.setdefault(label_studio_project_id(row["project"]), []).append(row)
            try:
                for project, items in by_project.items():
                    rescored = [self._rescored(calibration, row) for row in items]
                    sent = self._send_all(project, version, items, rescored)
                    self.store.rescored(version, [(row["task_id"], regions, task, result)
                                                  for row, (regions, task, _, result) in sent])
                    done += len(sent)
                    projects.add(project)
            except Exception as failure:  # noqa: BLE001 - Label Studio down or refusing: the next pass resumes
                error = f"{type(failure).__name__}: {failure}"
                log.error("re-scoring stopped after %d tasks: %s", done, error)
                break
            time.sleep(self.PAUSE_S)
        for project in projects:
            if self.version_sync is not None:
                self.version_sync.after_predictions(project, version)
        self.last = {"tasks": done, "seconds": time.perf_counter() - started, "error": error, "version": version}
        if done:
            log.info("re-scored %d open tasks for %s in %.1f s", done, version, self.last["seconds"])
        if self.counter is not None:
            self.counter.inc(done)
        return self.last

    def _rescored(self, calibration, row: dict) -> tuple[list[dict], float, float, list[dict]]:
        """(regions with new scores, task score, the score Label Studio is shown, result)."""
        regions = row["regions"]
        evidence = stored_evidence(regions, row["near_misses"], row["second_misses"])
        probabilities, task = scoring.score(evidence, calibration)
        shown, _ = route(task, row["task_id"], self.accept_above, self.audit_share)
        prefix = f"{row['task_id']}-"
        result = []
        for item in row["result"]:  # result ids are "<task>-<region number>-<control>" (predictor._encode)
            number = str(item.get("id", "")).removeprefix(prefix).split("-")[0]
            score = probabilities[int(number)] if number.isdigit() and int(number) < len(probabilities) else None
            result.append({**item, "score": score} if score is not None else item)
        return ([{**r, "score": p} for r, p in zip(regions, probabilities)], task, shown, result)

    def _send_all(self, project: str, version: str, rows: list[dict], rescored: list[tuple]) -> list[tuple]:
        """Send a batch; if Label Studio no longer has one of its tasks (deleted), send them one by
        one and forget the stored predictions of the deleted ones, so they cannot stop every pass."""
        try:
            self._send(project, version, rows, rescored)
            return list(zip(rows, rescored))
        except TaskGone:
            pass
        sent = []
        for row, new in zip(rows, rescored):
            try:
                self._send(project, version, [row], [new])
                sent.append((row, new))
            except TaskGone:
                log.warning("task %s is no longer in Label Studio project %s: its prediction is forgotten",
                            row["task_id"], project)
                self.store.forget(row["task_id"])
        return sent

    def _send(self, project: str, version: str, rows: list[dict], rescored: list[tuple]) -> None:
        payload = [{"task": int(row["task_id"]) if str(row["task_id"]).isdigit() else row["task_id"],
                    "result": result, "score": shown, "model_version": version}
                   for row, (_, _, shown, result) in zip(rows, rescored)]
        answer = self.session.post(urljoin(self.url + "/", f"api/projects/{project}/import/predictions"),
                                   json=payload, headers=self.auth_header(), timeout=self.timeout_s)
        gone = ("not found in project", "couldn't be retrieved")  # Label Studio 1.23's words, both import paths
        if answer.status_code == 400 and any(words in answer.text for words in gone):
            raise TaskGone(answer.text[:300])
        if answer.status_code >= 300:
            raise RuntimeError(f"Label Studio answered HTTP {answer.status_code} to importing predictions into "
                               f"project {project}: {answer.text[:300]}")
