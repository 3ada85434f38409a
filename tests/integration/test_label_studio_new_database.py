"""One backend, and Label Studio's database created anew under it (the same URL, project and task
ids from 1 again): the new project 1 starts from the pipeline's calibration and its own reviews,
the old project's reviews and refit are kept apart; the old database started again is refused
with the reason, in Label Studio's own view of the ML backend. Real Label Studio 1.23.2 (its
/setup, /predict and webhooks as it sends them), real YOLOv8n."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import requests

from benchmarks.processes import free_port

from .test_label_studio_live import CONFIG, IMAGES, TOKEN, _serve, running_label_studio

pytestmark = pytest.mark.integration


class _Api:
    def __init__(self, url: str):
        self.url = url

    def __call__(self, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self.url}{path}", headers={"Authorization": f"Token {TOKEN}"},
                                    timeout=120, **kwargs)
        assert response.status_code < 300, (path, response.status_code, response.text[:500])
        return response.json()


def _predicted_project(api: _Api, images: Path, backend: dict) -> tuple[int, list[dict]]:
    """A project over IMAGES (local files), connected to the backend, predictions retrieved."""
    project = api("POST", "/api/projects", json={"title": "new database", "label_config": CONFIG})["id"]
    api("POST", "/api/storages/localfiles", json={"project": project, "path": str(images), "use_blob_urls": True,
                                                  "title": "images"})
    api("POST", f"/api/projects/{project}/import",
        json=[{"data": {"image": f"/data/local-files/?d=images/{name}"}} for name in IMAGES[:2]])
    api("POST", "/api/ml", json={"project": project, "url": backend["url"], "title": "openautoglm"})
    api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
        json={"selectedItems": {"all": True, "excluded": []}})
    return project, api("GET", f"/api/tasks?project={project}&fields=all")["tasks"]


def _accept(api: _Api, task: dict) -> int:
    """A reviewer accepts the task's first predicted box as it is."""
    boxes = [r for r in task["predictions"][0]["result"] if r["type"] == "rectanglelabels"][:1]
    return api("POST", f"/api/tasks/{task['id']}/annotations", json={"result": [
        {k: r[k] for k in ("from_name", "to_name", "type", "value", "original_width", "original_height")}
        for r in boxes]})["id"]


def _reviews(store: Path, wanted: int, timeout: float = 30) -> set[tuple[str, str]]:
    """(annotation, project) of the reviews the store keeps, once there are `wanted` of them."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(store) as db:
            rows = set(db.execute("SELECT DISTINCT annotation_id, project FROM outcomes").fetchall())
        if len(rows) >= wanted or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_a_label_studio_database_created_anew_under_one_backend(tmp_path: Path, shared: Path) -> None:
    port = free_port()  # every Label Studio of this test answers here: the backend's LABEL_STUDIO_URL
    (tmp_path / "backend").mkdir()
    with _serve({"url": f"http://127.0.0.1:{port}"}, tmp_path / "backend", shared,
                OPENAUTOGLM_REFIT_EVERY="1") as backend:
        pipeline_version = requests.get(f"{backend['url']}/health", timeout=5).json()["model_version"]
        with running_label_studio(tmp_path / "first", shared, port) as first:
            api = _Api(first["url"])
            project, tasks = _predicted_project(api, first["images"], backend)
            reviewed = _accept(api, tasks[0])
            assert _reviews(backend["store"], 1) == {(str(reviewed), str(project))}
            deadline = time.monotonic() + 60  # one review refits the project (OPENAUTOGLM_REFIT_EVERY=1)
            while api("GET", f"/api/projects/{project}")["model_version"] == pipeline_version:
                assert time.monotonic() < deadline, "no refit of the first project"
                time.sleep(1)
            created = api("GET", f"/api/projects/{project}")["created_at"]
        time.sleep(1.5)  # Label Studio names a project by its id and creation second

        with running_label_studio(tmp_path / "second", shared, port) as second:  # a new database
            api = _Api(second["url"])
            again, tasks = _predicted_project(api, second["images"], backend)
            assert again == project and created != api("GET", f"/api/projects/{project}")["created_at"]
            assert {p["model_version"] for t in tasks for p in t["predictions"]} == {pipeline_version}
            retired = {key for _, key in _reviews(backend["store"], 1)}
            assert len(retired) == 1 and retired.pop().startswith(f"{project}@")  # kept, apart
            review = _accept(api, tasks[0])  # a task id the first database had reviewed too
            rows = _reviews(backend["store"], 2)
            assert (str(review), str(project)) in rows and len(rows) == 2, rows

        with running_label_studio(tmp_path / "first", shared, port) as first:  # the old database back
            api = _Api(first["url"])
            (ml,) = api("GET", f"/api/ml?project={project}")
            api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
                json={"selectedItems": {"all": True, "excluded": []}})
            shown = api("GET", f"/api/ml/{ml['id']}")
            assert shown["readable_state"] == "Error", shown
            assert "a second Label Studio or an older database" in shown["error_message"], shown
        assert len(_reviews(backend["store"], 2)) == 2  # nothing of it reached the store
