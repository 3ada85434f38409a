"""Every worker runs a JobRunner: a thread that claims pages of prelabelling jobs from the review
store (whichever worker or replica queued them), predicts them and imports them into the project,
so a large job uses every worker the server has, and survives the worker that queued it."""

from __future__ import annotations

import logging
import threading
import time

from openautoglm.model.reviews.calibrations import project_key
from openautoglm.model.reviews.store import ReviewStore

from .request_path import PredictRequests

log = logging.getLogger(__name__)


class JobRunner:
    POLL_S = 1.0  # how often an idle worker looks for pages another worker queued
    IMPORT_ATTEMPTS = 3

    def __init__(self, requests: PredictRequests, store: ReviewStore):
        self.requests, self.store = requests, store
        self._wake, self.busy = threading.Event(), False
        requests.on_queued = self._wake.set
        self.thread = threading.Thread(target=self._run, name="openautoglm-jobs", daemon=True)
        self.thread.start()

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Until no page is queued or being worked on anywhere (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while (self.store.jobs.pending_pages() or self.busy) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _run(self) -> None:
        while True:
            try:
                page = self.store.jobs.claim()
            except Exception:  # noqa: BLE001 - the store away for a moment: look again later
                log.exception("could not look for job pages")
                page = None
            if page is None:
                self._wake.wait(self.POLL_S)
                self._wake.clear()
                continue
            self.busy = True
            try:
                self._work(page)
            finally:
                self.busy = False

    def _work(self, page: dict) -> None:
        tasks, project = page["tasks"], page["project"]
        try:
            predictions = self.requests.job_page(page)
            if self.store.jobs.page_answered(page["job"], page["number"], predictions):
                return  # a waiting request answers with it
            imported = self._import(project, predictions)
        except Exception:  # noqa: BLE001 - this page fails alone; its tasks are free for the next click
            log.exception("job %s: page %s failed", page["job"], page["number"])
            imported = 0
        self.requests.metrics.imported.inc(imported)
        self.store.jobs.page_done(page["job"], page["number"], imported, [] if imported else [t["id"] for t in tasks])

    def _import(self, project: object, predictions: list[dict]) -> int:
        """Import one page, retried; the number of tasks Label Studio took."""
        for attempt in range(self.IMPORT_ATTEMPTS):
            try:
                self.requests.client.import_predictions(project_key(project), predictions)
                return len(predictions)
            except Exception as failure:  # noqa: BLE001 - Label Studio busy or away: try again, then give up
                log.warning("importing %d predictions into project %s failed (%s)%s", len(predictions),
                            project_key(project), failure, "; retrying" if attempt + 1 < self.IMPORT_ATTEMPTS else "")
                time.sleep(2.0 * (attempt + 1))
        return 0
