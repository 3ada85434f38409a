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
from typing import Callable
from urllib.parse import urljoin

import requests

log = logging.getLogger(__name__)


def label_studio_project_id(project: object) -> str:
    """The project's id from what Label Studio sends with /predict: "12.1700000000" (id.timestamp)."""
    return str(project or "").split(".")[0]


class ProjectVersionSync:
    def __init__(self, label_studio_url: str | None, auth_header: Callable[[], dict], enabled: bool = True,
                 delays_s: tuple[float, ...] = (1, 2, 4, 8, 15, 30), timeout_s: float = 20.0):
        self.url, self.auth_header = label_studio_url, auth_header
        self.enabled = enabled and bool(label_studio_url)
        self.delays_s, self.timeout_s = delays_s, timeout_s
        self._started: set[tuple[str, str]] = set()  # (project, version) pairs already handled by this process
        self._lock = threading.Lock()
        self.session = requests.Session()
        self.session.trust_env = False

    def after_predictions(self, project: object, version: str) -> threading.Thread | None:
        """Called after a /predict answer; `project` as Label Studio sends it."""
        project_id = label_studio_project_id(project)
        if not self.enabled or not project_id.isdigit():
            return None
        with self._lock:
            if (project_id, version) in self._started:
                return None
            self._started.add((project_id, version))
        thread = threading.Thread(target=self._move, args=(project_id, version), name="openautoglm-project-version",
                                  daemon=True)
        thread.start()
        return thread

    def _move(self, project_id: str, version: str) -> None:
        endpoint = urljoin(self.url + "/", f"api/projects/{project_id}")
        reason = "no attempt"
        for delay in self.delays_s:
            time.sleep(delay)
            try:
                headers = self.auth_header()
                current = self.session.get(endpoint, headers=headers, timeout=self.timeout_s)
                if current.status_code == 200 and current.json().get("model_version") == version:
                    return
                answer = self.session.patch(endpoint, json={"model_version": version}, headers=headers,
                                            timeout=self.timeout_s)
                if answer.status_code < 300:
                    log.info("Label Studio project %s now uses model version %s", project_id, version)
                    return
                reason = f"HTTP {answer.status_code}: {answer.text[:200]}"
                if answer.status_code in (401, 403, 404):
                    break  # retrying will not help
            except Exception as error:  # network, JSON or token refresh: retry, never kill the thread
                reason = f"{type(error).__name__}: {error}"
        log.warning("could not set Label Studio project %s's model version to %s (%s); set it under Settings -> "
                    "Annotation -> Prelabeling", project_id, version, reason)
