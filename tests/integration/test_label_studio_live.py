"""End to end with a real Label Studio 1.23.2 and the backend under gunicorn with the real YOLOv8n.

Label Studio pins Django, so it lives in its own virtual environment (.cache/label-studio-1.23.2,
created on first use); it runs on 127.0.0.1 with SQLite in a temp folder, local files served from
a document root, and a user and legacy token created by its own command line. The test starts and
stops everything itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from benchmarks.processes import free_port, wait_until_up
from openautoglm.cli.label_config import label_config
from openautoglm.converters import Shape
from openautoglm.converters.files import load_displayed
from openautoglm.converters.label_studio import parse_result

ROOT = Path(__file__).resolve().parents[2]
LS_VENV = ROOT / ".cache" / "label-studio-1.23.2"
TOKEN = "openautoglm0test0token0123"
LABELS = ["person", "bus", "giraffe", "dog", "bowl", "elephant"]
CONFIG = label_config(LABELS, masks=True)  # the README's step 2: `openautoglm label-config --labels ... --masks`
IMAGES = ["000000000009.jpg", "000000000025.jpg", "000000000030.jpg", "000000000036.jpg"]

pytestmark = pytest.mark.integration


def _label_studio_venv() -> Path:
    executable = LS_VENV / "bin" / "label-studio"
    if not executable.exists():
        shutil.rmtree(LS_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(LS_VENV)], check=True)
        subprocess.run([str(LS_VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "label-studio==1.23.2"], check=True)
    return executable


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory, shared: Path):
    with running_label_studio(tmp_path_factory.mktemp("label-studio"), shared) as started:
        yield started


@contextlib.contextmanager
def running_label_studio(work: Path, shared: Path, port: int | None = None):
    """A Label Studio with its own SQLite database in `work` (kept there: started again on it, it is
    the same Label Studio), coco128's IMAGES in its local-files root, the test's user and token."""
    executable = _label_studio_venv()
    images = work / "root" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in IMAGES:
        shutil.copy(shared / "data" / "coco128-train" / "images" / name, images / name)
    port = port or free_port()
    env = {**os.environ, "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
           "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(work / "root"), "ML_BLOCK_LOCAL_IP": "false",
           "SSRF_PROTECTION_ENABLED": "false", "LABEL_STUDIO_BASE_DATA_DIR": str(work / "base")}
    log = work / "label-studio.log"
    process = subprocess.Popen([str(executable), "start", "--no-browser", "--port", str(port), "--internal-host",
                                "127.0.0.1", "--data-dir", str(work / "data"), "--username", "lead@example.com",
                                "--password", "openautoglm-pass", "--user-token", TOKEN, "--enable-legacy-api-token"],
                               env=env, stdout=open(log, "a"), stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", 240, process, log)
        yield {"url": f"http://127.0.0.1:{port}", "images": images, "port": port}
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def _serve(label_studio, work: Path, shared: Path, **environment: str):
    """`openautoglm serve` with the real YOLOv8n, connected to this Label Studio."""
    port = free_port()
    env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(shared / "models"), "LABEL_STUDIO_URL": label_studio["url"],
           "LABEL_STUDIO_API_KEY": TOKEN, "OPENAUTOGLM_STORE": str(work / "reviews.sqlite3"),
           "OPENAUTOGLM_CACHE_DIR": str(work / "cache"), "OPENAUTOGLM_OFFLINE": "1",
           "OPENAUTOGLM_HOME": str(work / "home"), **environment}
    log = work / "backend.log"
    process = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1", "--port",
                                str(port), "--workers", "1", "--model", "yolo"], env=env, stdout=open(log, "w"),
                               stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", 120, process, log)
        yield {"url": f"http://127.0.0.1:{port}", "store": work / "reviews.sqlite3", "log": log}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def backend(label_studio, tmp_path_factory, shared: Path):
    with _serve(label_studio, tmp_path_factory.mktemp("backend"), shared, OPENAUTOGLM_REFIT_EVERY="2") as served:
        yield served


def test_predictions_scores_ordering_and_reviews(label_studio, backend, shared: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))  # the in-process model, for comparison
    ls, headers = label_studio["url"], {"Authorization": f"Token {TOKEN}"}

    def api(method: str, path: str, **kwargs):
        response = requests.request(method, f"{ls}{path}", headers=headers, timeout=120, **kwargs)
        assert response.status_code < 300, (path, response.status_code, response.text[:500])
        return response.json()

    # the README's steps in their order. 2: a project with the label-config command's output
    project = api("POST", "/api/projects", json={"title": "openautoglm live test", "label_config": CONFIG})["id"]
    # 3: images on disk through a Local files source storage (a folder inside the document root,
    # "Import method: Files", Add Storage, Sync Storage): Label Studio makes a task per image itself
    synced = label_studio["images"].parent / "synced"
    synced.mkdir()
    for name in IMAGES[:2]:
        shutil.copy(label_studio["images"] / name, synced / name)
    storage = api("POST", "/api/storages/localfiles", json={"project": project, "path": str(synced),
                                                            "use_blob_urls": True, "title": "images"})
    api("POST", f"/api/storages/localfiles/{storage['id']}/sync")
    deadline = time.monotonic() + 60
    while len(api("GET", f"/api/tasks?project={project}")["tasks"]) < 2:
        assert time.monotonic() < deadline, "Sync Storage made no tasks"
        time.sleep(0.5)
    for name in IMAGES[2:]:  # and uploaded files: /data/upload/... URLs
        with open(label_studio["images"] / name, "rb") as handle:
            api("POST", f"/api/projects/{project}/import", files={"file": (name, handle, "image/jpeg")})
    # 4-5: connect, retrieve predictions, sort (the backend sets the version)
    ml = api("POST", "/api/ml", json={"project": project, "url": backend["url"], "title": "openautoglm"})
    assert ml["readable_state"] == "Connected"
    # connecting the model creates the project's webhook to /webhook (so the README adds none)
    hooks = [h for h in api("GET", f"/api/webhooks?project={project}") if h["url"].startswith(backend["url"])]
    assert [h["url"] for h in hooks] == [f"{backend['url']}/webhook"], hooks
    version = requests.get(f"{backend['url']}/health", timeout=5).json()["model_version"]
    api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
        json={"selectedItems": {"all": True, "excluded": []}})
    tasks = api("GET", f"/api/tasks?project={project}&fields=all")["tasks"]
    assert len(tasks) == len(IMAGES)

    from openautoglm.model.inference.pipeline import Pipeline

    pipeline = Pipeline.load("yolo")
    found = 0
    for task in tasks:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == version and 0 <= prediction["score"] <= 1
        name = next(n for n in IMAGES if task["data"]["image"].endswith(n))
        image = load_displayed(label_studio["images"] / name)
        (expected,) = pipeline.propose([image], LABELS)
        boxes = [r for result in prediction["result"] if result["type"] == "rectanglelabels"
                 for r in parse_result(result, 0, 0, None, None)]
        masks = [r for result in prediction["result"] if result["type"] == "brushlabels"
                 for r in parse_result(result, 0, 0, None, None)]
        assert len(boxes) == len(masks) == len(expected)
        found += len(boxes)
        for got, want in zip(boxes, expected):
            assert got.label == want.label
            np.testing.assert_allclose(got.box.bounds(), want.box.bounds(), atol=0.5)
        for got, want in zip(masks, expected):  # no segmenter in `yolo`: the mask is the box's pixels
            assert got.shape is Shape.MASK
            bitmap = got.mask.to_array()
            ys, xs = np.nonzero(bitmap)
            # a filled rectangle whose edges are the box's, to the pixel a coordinate rounds to
            assert bitmap.sum() == (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
            np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], want.box.bounds(), atol=1)

    assert found >= len(IMAGES)

    # the backend moves the project to its model version once Label Studio has stored the predictions;
    # then Label Studio orders tasks lowest prediction score first
    deadline = time.monotonic() + 60
    while api("GET", f"/api/projects/{project}")["model_version"] != version:
        assert time.monotonic() < deadline, "the backend did not set the project's model version"
        time.sleep(1)
    view = api("POST", "/api/dm/views", json={"project": project, "data": {"ordering": ["tasks:predictions_score"]}})
    ordered = api("GET", f"/api/tasks?view={view['id']}&project={project}&fields=all")["tasks"]
    scores = [task["predictions_score"] for task in ordered]
    assert scores == sorted(scores) and None not in scores

    # a reviewer's annotation reaches /webhook and lands in the store
    task = tasks[0]
    accepted = [r for r in task["predictions"][0]["result"] if r["type"] == "rectanglelabels"][:1]
    annotation = api("POST", f"/api/tasks/{task['id']}/annotations", json={"result": [
        {k: r[k] for k in ("from_name", "to_name", "type", "value", "original_width", "original_height")}
        for r in accepted]})
    deadline = time.monotonic() + 20
    rows = []
    while time.monotonic() < deadline and not rows:
        time.sleep(0.5)
        with sqlite3.connect(backend["store"]) as db:
            rows = db.execute("SELECT label, matched, kind FROM outcomes WHERE annotation_id = ?",
                              (str(annotation["id"]),)).fetchall()
    assert (accepted[0]["value"]["rectanglelabels"][0], 1, "prediction") in rows

    # a second review makes OPENAUTOGLM_REFIT_EVERY=2: the backend refits the project's calibration,
    # re-scores the two tasks nobody reviewed in Label Studio under the new version and moves the
    # project to it; the version other projects get stays the pipeline's own
    api("POST", f"/api/tasks/{tasks[1]['id']}/annotations", json={"result": []})  # every prediction wrong
    deadline = time.monotonic() + 60
    while (refitted := requests.post(f"{backend['url']}/setup", json={"project": str(project)},
                                     timeout=5).json()["model_version"]) == version:
        assert time.monotonic() < deadline, "no refit after two reviews"
        time.sleep(0.5)
    assert requests.get(f"{backend['url']}/health", timeout=5).json()["model_version"] == version
    while api("GET", f"/api/projects/{project}")["model_version"] != refitted:
        assert time.monotonic() < deadline, "the project did not move to the refitted version"
        time.sleep(1)
    reviewed = {tasks[0]["id"], tasks[1]["id"]}
    ordered = api("GET", f"/api/tasks?view={view['id']}&project={project}&fields=all")["tasks"]
    open_tasks = [t for t in ordered if t["id"] not in reviewed]
    assert len(open_tasks) == len(IMAGES) - 2
    for task in open_tasks:
        newest = max(task["predictions"], key=lambda p: p["id"])
        assert newest["model_version"] == refitted and len(task["predictions"]) == 2
        old = next(p for p in task["predictions"] if p["model_version"] == version)
        assert [r["id"] for r in newest["result"]] == [r["id"] for r in old["result"]]
        assert task["predictions_score"] == pytest.approx(newest["score"])  # Label Studio sorts by the new score
    scores = [t["predictions_score"] for t in open_tasks]
    assert scores == sorted(scores)

    # deleting an annotation in Label Studio removes its outcome
    requests.delete(f"{ls}/api/annotations/{annotation['id']}", headers=headers, timeout=60).raise_for_status()
    deadline = time.monotonic() + 20
    while rows and time.monotonic() < deadline:
        time.sleep(0.5)
        with sqlite3.connect(backend["store"]) as db:
            rows = db.execute("SELECT label FROM outcomes WHERE annotation_id = ?", (str(annotation["id"]),)).fetchall()
    assert not rows, "the deleted annotation's outcome is still stored"

    # a skipped task (Label Studio keeps a cancelled annotation) is no review; a result without the
    # image size takes the stored prediction's
    boxed = next(t for t in open_tasks if any(r["type"] == "rectanglelabels" for r in t["predictions"][0]["result"]))
    skipped = next(t for t in open_tasks if t["id"] != boxed["id"])  # whichever order the refit gave them
    skip = api("POST", f"/api/tasks/{skipped['id']}/annotations", json={"result": [], "was_cancelled": True})
    unsized = api("POST", f"/api/tasks/{boxed['id']}/annotations", json={"result": [
        {k: r[k] for k in ("from_name", "to_name", "type", "value")} for r in boxed["predictions"][0]["result"]
        if r["type"] == "rectanglelabels"][:1]})
    deadline, states = time.monotonic() + 20, {}
    while len(states) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
        with sqlite3.connect(backend["store"]) as db:
            states = dict(db.execute("SELECT annotation_id, state FROM annotations WHERE annotation_id IN (?, ?)",
                                     (str(skip["id"]), str(unsized["id"]))).fetchall())
            outcomes = dict(db.execute("SELECT annotation_id, SUM(matched) FROM outcomes WHERE kind = 'prediction' "
                                       "GROUP BY annotation_id").fetchall())
    assert skip["was_cancelled"] and states == {str(skip["id"]): "cancelled", str(unsized["id"]): "review"}
    assert str(skip["id"]) not in outcomes and outcomes.get(str(unsized["id"])) == 1

    # 7: the project's report page
    page = requests.get(f"{backend['url']}/report?project={project}", timeout=60)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert f"Review report: project {project}" in page.text and "Refits: 1 done" in page.text


def test_retrieve_predictions_past_the_budget_leaves_no_task_without_one(label_studio, tmp_path, shared) -> None:
    """A budget far below one request's time: Label Studio stores the pages answered (the first at
    least), the backend's job imports the rest; a second click meanwhile predicts nothing twice."""
    ls, headers = label_studio["url"], {"Authorization": f"Token {TOKEN}"}

    def api(method: str, path: str, **kwargs):
        response = requests.request(method, f"{ls}{path}", headers=headers, timeout=120, **kwargs)
        assert response.status_code < 300, (path, response.status_code, response.text[:500])
        return response.json()

    environment = {"OPENAUTOGLM_PREDICT_BUDGET_S": "0.001", "OPENAUTOGLM_BATCH_SIZE": "2"}
    with _serve(label_studio, tmp_path, shared, **environment) as served:
        project = api("POST", "/api/projects", json={"title": "over budget", "label_config": CONFIG})["id"]
        api("POST", "/api/storages/localfiles", json={"project": project, "path": str(label_studio["images"]),
                                                      "use_blob_urls": True, "title": "images"})
        api("POST", f"/api/projects/{project}/import",
            json=[{"data": {"image": f"/data/local-files/?d=images/{name}"}} for name in IMAGES * 4])
        api("POST", "/api/ml", json={"project": project, "url": served["url"], "title": "openautoglm"})
        version = requests.get(f"{served['url']}/health", timeout=5).json()["model_version"]
        for _ in range(2):  # the second click asks for what has no prediction yet
            api("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
                json={"selectedItems": {"all": True, "excluded": []}})
        deadline = time.monotonic() + 120
        while True:
            jobs = requests.get(f"{served['url']}/jobs", timeout=5).json()["jobs"]
            if jobs and all(job["state"] != "running" for job in jobs) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        tasks = api("GET", f"/api/tasks?project={project}&fields=all&page_size=100")["tasks"]
    assert len(tasks) == 4 * len(IMAGES)
    assert [len(task["predictions"]) for task in tasks] == [1] * len(tasks)  # each exactly once
    assert all(task["predictions"][0]["model_version"] == version for task in tasks)
    assert jobs and all(job["state"] == "done" and job["failed"] == 0 for job in jobs), jobs
    # the request's first page (2 tasks) at least came in the answer, the rest was imported
    assert sum(job["predicted"] for job in jobs) == len(tasks) and 0 < sum(job["imported"] for job in jobs) <= len(
        tasks) - 2


def test_the_command_lines_tasks_import_as_they_are(label_studio, tmp_path, shared, monkeypatch) -> None:
    """The README's command-line route: predict into Label Studio's format with the project's
    config and the local-files root, import the file; every task holds one prediction."""
    from openautoglm.cli.main import main

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    (tmp_path / "config.xml").write_text(CONFIG)
    output = tmp_path / "tasks.json"
    assert main(["predict", str(label_studio["images"]), "--format", "label-studio", "-o", str(output),
                 "--label-config", str(tmp_path / "config.xml"),
                 "--image-url-root", "/data/local-files/?d=images/"]) == 0
    ls, headers = label_studio["url"], {"Authorization": f"Token {TOKEN}"}
    project = requests.post(f"{ls}/api/projects", headers=headers, timeout=60,
                            json={"title": "from the command line", "label_config": CONFIG}).json()["id"]
    storage = requests.post(f"{ls}/api/storages/localfiles", headers=headers, timeout=60,  # the README's step 3
                            json={"project": project, "path": str(label_studio["images"]), "use_blob_urls": True,
                                  "title": "images"})
    assert storage.status_code == 201, storage.text[:300]
    with open(output, "rb") as handle:
        answer = requests.post(f"{ls}/api/projects/{project}/import", headers=headers, timeout=120,
                               files={"file": ("tasks.json", handle, "application/json")})
    assert answer.status_code == 201, answer.text[:300]
    tasks = requests.get(f"{ls}/api/tasks?project={project}&fields=all", headers=headers, timeout=60).json()["tasks"]
    from openautoglm.model.inference.pipeline import Pipeline

    version = Pipeline.load("yolo").model_version
    assert len(tasks) == len(list(label_studio["images"].iterdir()))
    assert all(len(t["predictions"]) == 1 and t["predictions"][0]["model_version"] == version for t in tasks)
    assert sum(len(t["predictions"][0]["result"]) for t in tasks) > 0
    image = requests.get(f"{ls}{tasks[0]['data']['image']}", headers=headers, timeout=60)
    assert image.status_code == 200 and image.headers["Content-Type"].startswith("image/")


def test_prelabel_a_whole_project_and_run_it_again(label_studio, shared, monkeypatch, capsys) -> None:
    """`openautoglm label-studio prelabel`: every task gets one prediction of this model version (two
    worker processes); a second run (as after a kill) predicts nothing again."""
    from openautoglm.cli.main import main

    ls, headers = label_studio["url"], {"Authorization": f"Token {TOKEN}"}
    environment = {"OPENAUTOGLM_MODEL_DIR": str(shared / "models"), "LABEL_STUDIO_URL": ls,
                   "LABEL_STUDIO_API_KEY": TOKEN, "OPENAUTOGLM_BATCH_SIZE": "2", "OPENAUTOGLM_OFFLINE": "1"}
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    project = requests.post(f"{ls}/api/projects", headers=headers, timeout=60,
                            json={"title": "prelabel", "label_config": CONFIG}).json()["id"]
    requests.post(f"{ls}/api/storages/localfiles", headers=headers, timeout=60,
                  json={"project": project, "path": str(label_studio["images"]), "use_blob_urls": True, "title": "i"})
    answer = requests.post(f"{ls}/api/projects/{project}/import", headers=headers, timeout=60,
                           json=[{"data": {"image": f"/data/local-files/?d=images/{name}"}} for name in IMAGES * 3])
    assert answer.status_code == 201, answer.text[:300]
    assert main(["label-studio", "prelabel", "--project", str(project), "--page-size", "5", "--workers", "2"]) == 0
    assert "12 tasks, 0 already predicted" in capsys.readouterr().err
    assert main(["label-studio", "prelabel", "--project", str(project), "--page-size", "5"]) == 0
    again = capsys.readouterr().err
    assert "12 tasks, 12 already predicted" in again and ", 0 predicted and imported" in again
    tasks = requests.get(f"{ls}/api/tasks?project={project}&fields=all", headers=headers, timeout=60).json()["tasks"]
    from openautoglm.model.inference.pipeline import Pipeline

    version = Pipeline.load("yolo").model_version
    assert len(tasks) == 12 and all([p["model_version"] for p in t["predictions"]] == [version] for t in tasks)
    assert sum(len(t["predictions"][0]["result"]) for t in tasks) > 0
    assert all(t["predictions"][0]["score"] > 0 for t in tasks)  # every image was read (an unreadable one scores 0)


def test_label_studio_takes_the_label_config_command_s_output(label_studio, shared, monkeypatch, capsys) -> None:
    """`openautoglm label-config` for the real pipeline, masks and smart tools included: Label Studio
    creates a project from it as it is, with every class of the pipeline."""
    from openautoglm.cli.main import main

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    monkeypatch.setenv("OPENAUTOGLM_OFFLINE", "1")
    assert main(["label-config", "--model", "yolo", "--masks", "--interactive"]) == 0
    config = capsys.readouterr().out
    answer = requests.post(f"{label_studio['url']}/api/projects", headers={"Authorization": f"Token {TOKEN}"},
                           timeout=60, json={"title": "from label-config", "label_config": config})
    assert answer.status_code == 201, answer.text[:500]
    parsed = answer.json()["parsed_label_config"]
    assert {name: len(control["labels"]) for name, control in parsed.items()} == {"label": 80, "mask": 80, "click": 80}


def test_a_click_in_label_studio_finds_an_object_the_detector_did_not_show(label_studio, backend, shared,
                                                                            monkeypatch) -> None:
    """Label Studio's own interactive call (*Interactive preannotations* on, the smart keypoint of
    `label-config --interactive`): a keypoint at the centre of coco128's potted plant in image 30,
    which the detector does not show, gives its box; a keypoint on background gives nothing."""
    import json

    from openautoglm.converters import Box
    from openautoglm.converters.geometry import box_iou
    from openautoglm.model.inference.pipeline import Pipeline

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    ls, headers = label_studio["url"], {"Authorization": f"Token {TOKEN}"}

    def api(method: str, path: str, **kwargs):
        response = requests.request(method, f"{ls}{path}", headers=headers, timeout=120, **kwargs)
        assert response.status_code < 300, (path, response.status_code, response.text[:500])
        return response.json()

    name, label = "000000000030.jpg", "potted plant"
    doc = json.loads((shared / "data" / "coco128-train" / "annotations" / "instances.json").read_text())
    plant = next(a for a in doc["annotations"] if a["image_id"] == 30 and a["category_id"] == 64)
    x, y, w, h = plant["bbox"]
    truth = Box(x, y, x + w, y + h)
    image = load_displayed(label_studio["images"] / name)
    (shown,) = Pipeline.load("yolo").predict([image], LABELS + [label])
    assert not any(r.label == label and box_iou(r.box, truth) >= 0.5 for r in shown.regions), "the detector shows it"

    project = api("POST", "/api/projects", json={"title": "clicks", "label_config": label_config(
        [label, "vase"], interactive=True)})["id"]
    with open(label_studio["images"] / name, "rb") as handle:
        api("POST", f"/api/projects/{project}/import", files={"file": (name, handle, "image/jpeg")})
    (task,) = api("GET", f"/api/tasks?project={project}")["tasks"]
    ml = api("POST", "/api/ml", json={"project": project, "url": backend["url"], "title": "openautoglm",
                                      "is_interactive": True})

    def click(px: float, py: float) -> list[dict]:
        keypoint = {"id": "kp", "from_name": "click", "to_name": "image", "type": "keypointlabels",
                    "origin": "manual", "original_width": image.width, "original_height": image.height,
                    "is_positive": True, "value": {"x": 100 * px / image.width, "y": 100 * py / image.height,
                                                   "width": 0.6, "keypointlabels": [label]}}
        answer = api("POST", f"/api/ml/{ml['id']}/interactive-annotating",
                     json={"task": task["id"], "context": {"result": [keypoint]}})
        assert "errors" not in answer, answer
        return answer["data"]["result"]

    (found,) = click(x + w / 2, y + h / 2)  # the box only: the clicked keypoint is the annotator's already
    value = found["value"]
    box = Box(value["x"] * image.width / 100, value["y"] * image.height / 100,
              (value["x"] + value["width"]) * image.width / 100, (value["y"] + value["height"]) * image.height / 100)
    assert found["type"] == "rectanglelabels" and value["rectanglelabels"] == [label]
    assert box_iou(box, truth) >= 0.5 and 0 < found["score"] < 1
    assert click(5, 5) == []  # the top-left corner: background
