"""Matching journalled webhook events in the background: each server worker runs one thread that
wakes on a new event (or every few seconds, for events another worker or an earlier run left).
After a batch of reviews, and on Label Studio's START_TRAINING, it tells the refitter."""

from __future__ import annotations

import logging
import threading
import time

from openautoglm.converters.label_studio import parse_result
from openautoglm.model.reviews.store import ReviewStore, match

log = logging.getLogger(__name__)


class ReviewWorker:
    POLL_S = 2.0

    def __init__(self, store: ReviewStore, refitter=None):
        self.store, self.refitter = store, refitter
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name="openautoglm-reviews", daemon=True)
        self.thread.start()

    def submit(self, event: dict) -> None:
        """Journal the event (durable when this returns), then wake the matching thread."""
        self.store.save_event(event)
        self._wake.set()

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until no journalled event is left (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        while self.store.pending_events() and time.monotonic() < deadline:
            time.sleep(0.02)

    def _run(self) -> None:
        failing = False
        while True:
            try:
                handled = 0
                while count := self.store.handle_pending(self.handle):
                    handled += count
                if handled and self.refitter is not None:
                    self.refitter.request()
            except Exception as error:  # the store itself failed (disk full, database away): retry later
                if failing:  # one traceback per outage, then one line per retry
                    log.warning("matching webhook events still failing (%s); retrying", error)
                else:
                    log.exception("matching webhook events failed; retrying")
                failing = True
            else:
                failing = False
            self._wake.wait(self.POLL_S)
            self._wake.clear()

    def handle(self, event: dict) -> None:
        action = event.get("action")
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            annotation = event.get("annotation") or {}
            task_id = (event.get("task") or {}).get("id", annotation.get("task"))
            stored = self.store.prediction(task_id)
            if stored is None:
                log.info("annotation %s: no prediction stored for task %s", annotation.get("id"), task_id)
                return
            results = annotation.get("result") or []
            regions = [r for result in results for r in parse_result(result, 1, 1, "human", None)]
            self.store.record(annotation.get("id"), task_id, stored[0], match(stored[1], regions))
        elif action == "ANNOTATIONS_DELETED":
            self.store.delete([a.get("id") for a in event.get("annotations") or []])
        elif action == "START_TRAINING" and self.refitter is not None:
            self.refitter.request(force=True)
