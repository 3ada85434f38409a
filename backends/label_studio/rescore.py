"""Re-scoring a project's open queue after its refit: every stored prediction of a task of the
project nobody has reviewed yet gets the project's new calibration's scores from its stored raw
scores and near misses (no model run), and goes back to Label Studio as a new prediction under the
project's new model version (bulk import), so the queue's order and score filters follow; then the
project moves to that version.

Batched and paced so Label Studio keeps serving its annotators; resumable, because the store
marks each task re-scored only after Label Studio has taken it: a pass cut short by a stop or an
error is finished by the next one (after the next refit, or the next start's first refit check).
A batch is marked as being sent before it goes: if the pass dies between Label Studio taking it
and the store noting so (kill -9, or an import answered after its timeout), the next pass asks
Label Studio which of those tasks hold the new version already and does not send them twice.
"""

from __future__ import annotations

import logging
import time

from openautoglm.model.reviews.calibrations import project_key
from openautoglm.model.reviews.store import ReviewStore, stored_evidence
from openautoglm.model.scores import scoring

from .audit import route
from .client import LabelStudioClient, TaskGone
from .project_calibrations import ProjectCalibrations
from .project_version import ProjectVersionSync

log = logging.getLogger(__name__)


class QueueRescorer:
    BATCH = 200  # tasks per import request
    PAUSE_S = 0.05  # between requests: 10,000 tasks pause 2.5 s in all

    def __init__(self, client: LabelStudioClient, store: ReviewStore, calibrations: ProjectCalibrations,
                 accept_above: float | None, audit_share: float, version_sync: ProjectVersionSync | None = None,
                 counter=None):
        self.client, self.store, self.calibrations = client, store, calibrations
        self.accept_above, self.audit_share = accept_above, audit_share
        self.version_sync, self.counter = version_sync, counter
        self.last: dict = {}  # the latest pass: tasks, seconds, error

    def rescore(self, project: str) -> dict:
        """Every open task of `project` scored by other than its calibration now, re-scored and sent."""
        calibration, version = self.calibrations.scoring(project)
        started, done, error = time.perf_counter(), 0, None
        while self.client.writable and calibration is not None and project_key(project).isdigit():
            items = self.store.unreviewed(self.calibrations.pipeline.version, project, version, self.BATCH)
            if not items:
                break
            try:
                rescored = [self._rescored(calibration, row) for row in items]
                arrived = self._arrived(version, items)
                todo = [(row, new) for row, new in zip(items, rescored) if row["task_id"] not in arrived]
                self.store.mark_sending(version, [row["task_id"] for row, _ in todo])
                sent = self._send_all(project, version, [row for row, _ in todo], [new for _, new in todo])
                sent += [(row, new) for row, new in zip(items, rescored) if row["task_id"] in arrived]
                self.store.rescored(version, [(row["task_id"], regions, task, result)
                                              for row, (regions, task, _, result) in sent])
                done += len(sent)
            except Exception as failure:  # noqa: BLE001 - Label Studio down or refusing: the next pass resumes
                error = f"{type(failure).__name__}: {failure}"
                log.error("re-scoring project %s stopped after %d tasks: %s", project, done, error)
                break
            time.sleep(self.PAUSE_S)
        if done and self.version_sync is not None:
            self.version_sync.after_predictions(project, version)
        self.last = {"tasks": done, "seconds": time.perf_counter() - started, "error": error, "version": version}
        if done:
            log.info("re-scored %d open tasks of project %s for %s in %.1f s", done, project, version,
                     self.last["seconds"])
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
        for item in row["result"]:  # result ids are "<task>-<region number>-<control>" (encode_regions)
            number = str(item.get("id", "")).removeprefix(prefix).split("-")[0]
            score = probabilities[int(number)] if number.isdigit() and int(number) < len(probabilities) else None
            result.append({**item, "score": score} if score is not None else item)
        return ([{**r, "score": p} for r, p in zip(regions, probabilities)], task, shown, result)

    def _arrived(self, version: str, rows: list[dict]) -> set[str]:
        """Of the tasks a pass cut short was sending (killed, or Label Studio answering too late),
        those Label Studio holds this version's prediction of already: not sent twice."""
        arrived = set()
        for row in rows:
            if row["sending"] == version:
                try:
                    if version in self.client.prediction_versions(row["task_id"]):
                        arrived.add(row["task_id"])
                except TaskGone:
                    pass  # _send_all finds it gone and forgets it
        return arrived

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
        self.client.import_predictions(project, [
            {"task": int(row["task_id"]) if str(row["task_id"]).isdigit() else row["task_id"], "result": result,
             "score": shown, "model_version": version} for row, (_, _, shown, result) in zip(rows, rescored)])
