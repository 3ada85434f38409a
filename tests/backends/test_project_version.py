"""After a project's first predictions the backend moves the project to its model version, so
Label Studio's score column, filters and ordering work without a manual step."""

from __future__ import annotations

import time

from openautoglm.backends.label_studio.client import LabelStudioClient
from openautoglm.backends.label_studio.project_version import ProjectVersionSync

CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="cat"/></RectangleLabels></View>')


def _predict(client, image_server, project="3.1795446658", context=None):
    body = {"tasks": [{"id": 1, "data": {"image": f"{image_server.url}/img.png"}}], "label_config": CONFIG,
            "project": project, "params": {"context": context}}
    assert client.post("/predict", json=body).status_code == 200


def _fast(client) -> ProjectVersionSync:
    sync = client.app.extensions["openautoglm"].version_sync
    sync.delays_s = (0, 0.05, 0.05, 0.05)
    return sync


def test_the_project_is_moved_once_label_studio_accepts_the_version(make_client, image_server) -> None:
    client = make_client()
    sync = _fast(client)
    image_server.patch_refusals = 2  # Label Studio has not stored the predictions yet, twice
    _predict(client, image_server)
    version = client.get("/health").get_json()["model_version"]
    deadline = time.monotonic() + 10
    while image_server.project_version != version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert image_server.project_version == version
    patches = [h for path, h in image_server.requests if path == "/api/projects/3"]
    assert patches and all(h["Authorization"] == "Token legacy-key" for h in patches)
    # later batches of the same project and version ask nothing more
    count = len(image_server.requests)
    assert sync.after_predictions("3.1795446658", version) is None
    _predict(client, image_server)
    assert not [p for p, _ in image_server.requests[count:] if p.startswith("/api/projects")]


def test_interactive_calls_and_switched_off_settings_leave_the_project_alone(make_client, image_server) -> None:
    client = make_client()
    _fast(client)
    _predict(client, image_server, context={"result": []})
    off = make_client(set_project_version=False)
    _predict(off, image_server)
    assert not [p for p, _ in image_server.requests if p.startswith("/api/projects")]
    assert image_server.project_version == "openautoglm"


def test_a_refusal_that_lasts_is_logged_with_what_to_do(image_server, caplog) -> None:
    image_server.patch_refusals = 100
    sync = ProjectVersionSync(LabelStudioClient(image_server.url, None), delays_s=(0, 0.01))
    sync.after_predictions(7, "v2").join(5)
    assert "could not set Label Studio project 7's model version to v2 (HTTP 400" in caplog.text
    assert "Settings -> Annotation -> Prelabeling" in caplog.text
