"""Moving a Label Studio project to the backend's model version.

Label Studio shows, filters and orders by prediction score only for predictions whose
model_version is the project's, and it refuses a model_version for which it stores no
predictions yet (HTTP 400). So the backend sets it itself, once it has answered a project's first
/predict: Label Studio stores those predictions after the answer, hence the retries.
"""

from __future__ import annotations

import logging
import threading
import time

from openautoglm.model.reviews.calibrations import project_key

from .client import LabelStudioClient

log = logging.getLogger(__name__)


class ProjectVersionSync:
    def __init__(self, client: LabelStudioClient, enabled: bool = True,
                 delays_s: tuple[float, ...] = (1, 2, 4, 8, 15, 30)):
        self.client = client
        self.enabled = enabled and bool(client.url)
        self.delays_s = delays_s
        self._started: set[tuple[str, str]] = set()  # (project, version) pairs already handled by this process
        self._lock = threading.Lock()

    def after_predictions(self, project: object, version: str) -> threading.Thread | None:
        """Called after a /predict answer; `project` as Label Studio sends it."""
        project = project_key(project)
        if not self.enabled or not project.isdigit():
            return None
        with self._lock:
            if (project, version) in self._started:
                return None
            self._started.add((project, version))
        thread = threading.Thread(target=self._move, args=(project, version), name="openautoglm-project-version",
                                  daemon=True)
        thread.start()
        return thread

    def forget(self, project: object) -> None:
        """A replaced project (a new Label Studio database): its version is moved again."""
        key = project_key(project)
        with self._lock:
            self._started = {pair for pair in self._started if pair[0] != key}

    def _move(self, project: str, version: str) -> None:
        reason = "no attempt"
        for delay in self.delays_s:
            time.sleep(delay)
            try:
                if self.client.project_model_version(project) == version:
                    return
                answer = self.client.set_project_model_version(project, version)
                if answer.status_code < 300:
                    log.info("Label Studio project %s now uses model version %s", project, version)
                    return
                reason = f"HTTP {answer.status_code}: {answer.text[:200]}"
                if answer.status_code in (401, 403, 404):
                    break  # retrying will not help
            except Exception as error:  # network, JSON or token refresh: retry, never kill the thread
                reason = f"{type(error).__name__}: {error}"
        log.warning("could not set Label Studio project %s's model version to %s (%s); set it under Settings -> "
                    "Annotation -> Prelabeling", project, version, reason)
