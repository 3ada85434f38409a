"""One /predict from decode to answer, within Label Studio's time window.

Label Studio 1.23 sends every selected task in one /predict and gives up after ML_TIMEOUT_PREDICT
(100 s), saving nothing and saying so only in its log. So the answer comes within a budget
(OPENAUTOGLM_PREDICT_BUDGET_S). A request of more than a page is a job (`model.reviews.jobs`)
whose pages this thread and every worker's JobRunner predict, so one request uses every core; the
pages predicted by then are answered, the rest are imported into the project through Label
Studio's API by the JobRunners. An unfinished task is answered with an empty list
of predictions: Label Studio stores nothing for it and logs nothing, and a task a live job already
holds is answered so too, so a second click never predicts or stores a task twice.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from openautoglm.model.reviews.calibrations import project_key
from openautoglm.model.reviews.store import ReviewStore

from .audit import route
from .client import LabelStudioClient
from .metrics import Metrics
from .predictor import Predictor, TaskOutcome
from .prelabel import as_job_tasks, lacking
from .project_version import ProjectVersionSync

log = logging.getLogger(__name__)


class PredictRequests:
    """Each page of tasks: the predictor's outcomes, each task's shown score after the audit routing
    (OPENAUTOGLM_ACCEPT_ABOVE), the predictions kept for reviews, and the project moved to this
    model version. Interactive requests (a context) are drafts: not kept, never deferred."""

    def __init__(self, predictor: Predictor, store: ReviewStore, metrics: Metrics, version_sync: ProjectVersionSync,
                 client: LabelStudioClient, accept_above: float | None, audit_share: float,
                 budget_s: float | None = None):
        self.predictor, self.store, self.metrics, self.version_sync = predictor, store, metrics, version_sync
        self.client, self.accept_above, self.audit_share, self.budget_s = client, accept_above, audit_share, budget_s
        self.on_queued = lambda: None  # the JobRunner's wake-up: job pages were queued

    def answer(self, tasks: list, config: str, context: dict | None, project: object) -> list:
        if context:
            outcomes = self.predictor.predict(tasks, config, context, project)
            self.metrics.count_tasks(outcomes)
            return [{"result": o.result, "score": o.score, "model_version": o.model_version} for o in outcomes]
        ids = [task.get("id") if isinstance(task, dict) else None for task in tasks]
        held = self.store.jobs.held([i for i in ids if i is not None])
        todo = [index for index, task_id in enumerate(ids) if str(task_id) not in held]
        answers: list = [[] for _ in tasks]  # [] : no prediction from this answer (Label Studio skips it)
        if len(todo) > self.answer_page_tasks and all(ids[i] is not None for i in todo):
            self._answer_shared([tasks[i] for i in todo], config, project, answers, {str(ids[i]): i for i in todo})
            return answers
        for start in range(0, len(todo), self.predictor.batch_size):  # a page or tasks without ids: here
            page = todo[start:start + self.predictor.batch_size]
            for index, entry in zip(page, self.page([tasks[i] for i in page], config, project)):
                answers[index] = entry
        return answers

    def _answer_shared(self, tasks: list, config: str, project: object, answers: list, position: dict) -> None:
        """A large request as an answering job: this thread and every worker's JobRunner predict its
        pages, until all are done or the budget is spent; the rest is imported in the background."""
        job, mine = self.store.jobs.start(project, self.predictor.scoring(project)[1], as_job_tasks(tasks), config,
                                          self.answer_page_tasks, answering=True)
        self.on_queued()
        started, slowest, deferrable = time.perf_counter(), 0.0, None
        try:
            while True:
                if slowest and self._over_budget(time.perf_counter() - started + slowest):  # one page at least
                    deferrable = self._can_defer(project) if deferrable is None else deferrable  # asked once
                    if deferrable:
                        break
                page = self.store.jobs.claim(job=job)
                if page is None:  # the rest is with other workers
                    if not self.store.jobs.pages_left(job):
                        break
                    time.sleep(0.02)
                    continue
                page_started = time.perf_counter()
                self.store.jobs.page_answered(job, page["number"], self.job_page(page))
                slowest = max(slowest, time.perf_counter() - page_started)
        finally:
            answered, left = self.store.jobs.stop_answering(job, self.job_page_tasks)
        for entries in answered.values():
            for entry in entries:
                answers[position[str(entry.pop("task"))]] = entry
        deferred = len(mine) - sum(len(entries) for entries in answered.values())
        if deferred:
            self.metrics.deferred.inc(deferred)
            log.info("job %s: %d tasks of project %s go on in the background after the /predict budget of %.0f s",
                     job, deferred, project_key(project), self.budget_s)
        if left:
            self.on_queued()

    def job_page(self, page: dict) -> list[dict]:
        """A claimed job page (`JobStore.claim`) predicted: its entries with their task's id, the
        form an answer keeps and an import sends."""
        tasks, entries = page["tasks"], []
        for start in range(0, len(tasks), self.answer_page_tasks):  # the images of one batch in memory at a time
            entries += self.page(tasks[start:start + self.answer_page_tasks], page["config"] or "", page["project"])
        return [{"task": task["id"], **entry} for task, entry in zip(tasks, entries)]

    def page(self, tasks: list, config: str, project: object) -> list[dict]:
        """Predict, keep for reviews and route one page; its answer entries, in order."""
        outcomes: list[TaskOutcome] = self.predictor.predict(tasks, config, None, project)
        self.metrics.count_tasks(outcomes)
        version = outcomes[0].model_version if outcomes else self.predictor.scoring(project)[1]
        shown = [route(o.score, o.task_id, self.accept_above, self.audit_share) for o in outcomes]
        self.store.save_predictions(version, [(o.task_id, o.regions, o.evidence, o.score)
                                              for o in outcomes if not o.error and o.task_id is not None],
                                    {o.task_id for o, (_, audited) in zip(outcomes, shown) if audited},
                                    project, {o.task_id: o.result for o in outcomes},
                                    {o.task_id: o.size for o in outcomes if o.size})
        self.version_sync.after_predictions(project, version)
        return [{"result": o.result, "score": score, "model_version": version}
                for o, (score, _) in zip(outcomes, shown)]

    # tasks per job page, at most: one import request each. In a 10,000-task project Label Studio
    # spends 1-2 s on an import request whether it holds 64 predictions or 512 (pages of a model
    # batch made the import the bottleneck already at 1,500 tasks)
    JOB_PAGE_TASKS = 512
    JOB_PAGES_AT_LEAST, JOB_PAGE_TASKS_AT_LEAST = 16, 64  # every worker gets pages; progress shows

    def job_page_tasks(self, tasks: int) -> int:
        """Tasks per page for a job of `tasks`: as few import requests as keep JOB_PAGES_AT_LEAST pages."""
        spread = max(self.JOB_PAGE_TASKS_AT_LEAST, math.ceil(tasks / self.JOB_PAGES_AT_LEAST))
        return max(1, min(self.JOB_PAGE_TASKS, spread))
    # tasks per page of a request that every worker shares (at most a model batch): small enough to
    # keep both busy and to stop close to the budget, large enough that the store's bookkeeping is noise
    ANSWER_PAGE_TASKS = 32

    @property
    def answer_page_tasks(self) -> int:
        """A request of more than this is shared; one of this many at most is predicted whatever the budget."""
        return max(1, min(self.ANSWER_PAGE_TASKS, self.predictor.batch_size))

    def _over_budget(self, expected_s: float) -> bool:
        return self.budget_s is not None and expected_s > self.budget_s

    def _can_defer(self, project: object) -> bool:
        """Only where the rest can reach the project: Label Studio's URL, an API key, a project id."""
        if self.client.writable and project_key(project).isdigit():
            return True
        log.warning("the /predict budget is spent, but the rest cannot be imported later (needs LABEL_STUDIO_URL, "
                    "LABEL_STUDIO_API_KEY and a project): predicting them all in this request")
        return False

    def start_project(self, project: str, config: str) -> str:
        """Pre-annotate a whole project (`config`: its labelling config) in the background: its tasks
        are read a page at a time here and queued for every worker's JobRunner; a job in /jobs."""
        version = self.predictor.scoring(project)[1]
        job, _ = self.store.jobs.start(project, version, [], config, feeding=True)
        threading.Thread(target=self._feed, args=(job, project, version), daemon=True,
                         name=f"openautoglm-feed-{job}").start()
        return job

    def _feed(self, job: str, project: str, version: str) -> None:
        error = None
        try:
            for tasks, _ in self.client.task_pages(project):
                self.store.jobs.feed(job, as_job_tasks(lacking(tasks, version)), self.job_page_tasks(len(tasks)))
                self.on_queued()
        except Exception as failure:  # noqa: BLE001 - reported in /jobs; started again, it skips what is done
            error = f"{type(failure).__name__}: {failure}"
            log.exception("job %s (project %s) stopped reading the project's tasks", job, project)
        self.store.jobs.fed(job, error)
