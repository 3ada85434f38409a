"""Matching journalled webhook events in the background: each server worker runs one thread that
wakes on a new event (or every few seconds, for events another worker or an earlier run left).
After a batch of reviews, and on Label Studio's START_TRAINING, it tells the refitter."""

from __future__ import annotations

import logging
import threading
import time

from openautoglm.converters.label_studio import parse_result
from openautoglm.model.reviews.annotations import updated_at
from openautoglm.model.reviews.projects import project_identity
from openautoglm.model.reviews.store import ReviewStore, match

log = logging.getLogger(__name__)


class ReviewWorker:
    POLL_S = 2.0

    def __init__(self, store: ReviewStore, refitter=None, guard=None):
        self.store, self.refitter, self.guard = store, refitter, guard
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
        """One event, in journal order; the store's annotations decide what stands as the review
        (model.reviews.annotations). An error moves the event to failed events with its reason."""
        action = event.get("action")
        if self.guard is not None:
            self.guard.check(event.get("project"))  # another Label Studio's project: failed events, with why
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            problem = event_problem(event)  # journalled before the route checked it, or by an older version
            if problem:
                raise UnusableEvent(problem)
            annotation, task_id = event["annotation"], _task_id(event)
            if not self.store.annotations.save(annotation["id"], task_id, updated_at(annotation, time.time()),
                                               bool(annotation.get("was_cancelled")),
                                               bool(annotation.get("ground_truth")), annotation.get("result") or []):
                log.info("annotation %s: older than its state already kept (or deleted); ignored", annotation["id"])
                return
            self._review(task_id, event.get("project"))
        elif action == "ANNOTATIONS_DELETED":
            ids = [a.get("id") for a in event.get("annotations") or []]
            tasks = self.store.annotations.delete(ids, time.time())
            self.store.delete(ids, event.get("project"))  # outcomes recorded before annotations were kept
            for task_id in tasks:
                self._review(task_id, event.get("project"))
        elif action == "START_TRAINING" and self.refitter is not None:
            self.refitter.request(force=True, project=event.get("project"))  # the object or its id

    def _review(self, task_id, project: object) -> None:
        """The task's outcomes, from the annotation standing for it (none when there is none), against
        the prediction made for the event's project (a replaced project's task id is another task)."""
        self.store.clear_reviews(task_id, project)
        standing, stored = self.store.annotations.standing(task_id), self.store.prediction(task_id, project)
        if standing is None:
            return
        annotation_id, results = standing
        if stored is None:
            log.info("annotation %s: no prediction stored for task %s of project %s", annotation_id, task_id,
                     project_identity(project)[0] or "(not named)")
            return
        size = self.store.image_size(task_id)
        regions = []
        for result in results:
            sized = isinstance(result, dict) and "original_width" in result and "original_height" in result
            found = parse_result(result, *(size or (1, 1)), "human", None)
            if found and not sized and size is None:
                raise UnusableEvent(f"annotation {annotation_id} of task {task_id}: a result has no original_width/"
                                    "original_height and the predicted image's size is not stored")
            regions += found
        self.store.record(annotation_id, task_id, stored[0], match(stored[1], regions))


USED_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING")


def event_problem(event: dict) -> str | None:
    """Why a used event cannot become a review (answered 400 before it is journalled), or None."""
    action = event.get("action")
    if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        annotation = event.get("annotation")
        if not isinstance(annotation, dict) or annotation.get("id") is None:
            return f"{action} needs 'annotation' with its 'id'"
        if _task_id(event) is None:
            return f"{action} needs 'task' with its 'id' (or 'annotation.task')"
        if not isinstance(annotation.get("result", []), list):
            return f"{action}: 'annotation.result' must be a list"
    elif action == "ANNOTATIONS_DELETED":
        annotations = event.get("annotations")
        if not isinstance(annotations, list) or not all(isinstance(a, dict) and "id" in a for a in annotations):
            return "ANNOTATIONS_DELETED needs 'annotations', a list of objects with their 'id'"
    return None


def _task_id(event: dict):
    """The reviewed task: the event's task, else the one the annotation names."""
    task = event.get("task")
    return task.get("id") if isinstance(task, dict) else event["annotation"].get("task")


class UnusableEvent(ValueError):
    """An event that cannot become a review: kept in failed events with this reason."""
