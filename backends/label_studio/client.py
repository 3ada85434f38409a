"""The backend's side of Label Studio's API, in one place: credentials, the project's model
version, and importing predictions.

The API key may be a legacy token (`Authorization: Token <key>`) or a personal access token, a JWT
refresh token exchanged at /api/token/refresh/ for a 5-minute access token sent as `Bearer`.
Credentials go only to the Label Studio host (`is_own_host`).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests


class LabelStudioError(Exception):
    """Label Studio refused or could not be reached; the message says which call and why."""


class TaskGone(LabelStudioError):
    """Label Studio refused an import because a task of it no longer exists."""





class LabelStudioClient:
    IMPORT_TIMEOUT_S = 60.0  # a page of a few hundred predictions; Label Studio validates each

    def __init__(self, url: str | None, api_key: str | None, timeout_s: float = 20.0,
                 session: requests.Session | None = None):
        self.url, self.api_key, self.timeout_s = url, api_key, timeout_s
        self.session = session or requests.Session()
        # requests re-reads the proxy variables and ~/.netrc on every request (~0.6 ms of CPU per
        # image); proxies are looked up once per host instead, and the CA bundle variable once
        self.session.trust_env = False
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._access_token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    @property
    def writable(self) -> bool:
        """Whether the backend can write to Label Studio (a URL and an API key are set)."""
        return bool(self.url and self.api_key)

    def is_own_host(self, url: str) -> bool:
        if not self.url:
            return False
        ours, theirs = urlsplit(self.url), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    def auth_header(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.api_key.count(".") != 2:  # not a JWT: a legacy token
            return {"Authorization": f"Token {self.api_key}"}
        with self._lock:
            if self._access_token is None or self._access_token[1] < time.monotonic():
                refresh = self.endpoint("api/token/refresh/")
                response = self.session.post(refresh, json={"refresh": self.api_key}, timeout=self.timeout_s,
                                             proxies=proxies_for(*urlsplit(refresh)[:2]))
                if response.status_code != 200:
                    raise LabelStudioError(f"personal access token refresh failed: HTTP {response.status_code}")
                self._access_token = (response.json()["access"], time.monotonic() + 240)  # valid 5 minutes
            return {"Authorization": f"Bearer {self._access_token[0]}"}

    def endpoint(self, path: str) -> str:
        return urljoin(self.url + "/", path)

    def _project(self, project: str) -> requests.Response:
        return self.session.get(self.endpoint(f"api/projects/{project}"), headers=self.auth_header(),
                                timeout=self.timeout_s)

    def project_model_version(self, project: str) -> str | None:
        answer = self._project(project)
        return answer.json().get("model_version") if answer.status_code == 200 else None

    def set_project_model_version(self, project: str, version: str) -> requests.Response:
        return self.session.patch(self.endpoint(f"api/projects/{project}"), json={"model_version": version},
                                  headers=self.auth_header(), timeout=self.timeout_s)

    def project(self, project: str) -> dict:
        """The project as Label Studio's API shows it (id, created_at, label_config, ...)."""
        answer = self._project(project)
        if answer.status_code != 200:
            raise LabelStudioError(f"Label Studio answered HTTP {answer.status_code} for project {project}: "
                                   f"{answer.text[:300]}")
        return answer.json()

    def label_config(self, project: str) -> str:
        return self.project(project).get("label_config") or ""

    def task_pages(self, project: str, page_size: int = 100):
        """The project's tasks with their predictions, a page (a list) at a time, and the total first."""
        page = 1
        while True:
            answer = self.session.get(self.endpoint("api/tasks"), headers=self.auth_header(), timeout=self.timeout_s,
                                      params={"project": project, "page": page, "page_size": page_size,
                                              "fields": "all"})
            if answer.status_code == 404 and page > 1:  # past the last page
                return
            if answer.status_code != 200:
                raise LabelStudioError(f"Label Studio answered HTTP {answer.status_code} listing the tasks of "
                                       f"project {project}: {answer.text[:300]}")
            body = answer.json()
            tasks = body.get("tasks", []) if isinstance(body, dict) else body
            yield tasks, body.get("total") if isinstance(body, dict) else None
            if len(tasks) < page_size:
                return
            page += 1

    def prediction_versions(self, task_id: Any) -> set[str]:
        """The model versions of a task's predictions in Label Studio; TaskGone if it has no such task."""
        answer = self.session.get(self.endpoint(f"api/tasks/{task_id}"), headers=self.auth_header(),
                                  timeout=self.timeout_s)
        if answer.status_code == 404:
            raise TaskGone(f"task {task_id} not found")
        if answer.status_code != 200:
            raise LabelStudioError(f"Label Studio answered HTTP {answer.status_code} reading task {task_id}")
        return {p.get("model_version") for p in answer.json().get("predictions") or []}

    def import_predictions(self, project: str, predictions: list[dict]) -> None:
        """One bulk import; TaskGone when a task of it no longer exists in the project."""
        answer = self.session.post(self.endpoint(f"api/projects/{project}/import/predictions"), json=predictions,
                                   headers=self.auth_header(), timeout=self.IMPORT_TIMEOUT_S)
        gone = ("not found in project", "couldn't be retrieved")  # Label Studio 1.23's words, both import paths
        if answer.status_code == 400 and any(words in answer.text for words in gone):
            raise TaskGone(answer.text[:300])
        if answer.status_code >= 300:
            raise LabelStudioError(f"Label Studio answered HTTP {answer.status_code} to importing predictions into "
                                   f"project {project}: {answer.text[:300]}")


@functools.lru_cache(maxsize=64)
def proxies_for(scheme: str, host: str) -> dict[str, str]:
    """The proxies the environment sets for this host (none where NO_PROXY lists it)."""
    return requests.utils.get_environ_proxies(f"{scheme}://{host}/")
