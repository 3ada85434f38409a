"""End to end with a real CVAT 2.42 server (../shared/cvat-server: its own Django server, RQ
workers and lambda manager, PostgreSQL, Redis) calling `openautoglm serve` as its Nuclio
dashboard, the way the README's "Quickstart: CVAT" connects them, and cvat-cli running the cvat-sdk
function against the same server.

CVAT is installed into .cache/cvat-server on first use (its install script is idempotent: a few
seconds once installed) and started and stopped by the test. What CVAT stores is compared with
what the backend answers when called directly with the same frame bytes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from benchmarks.processes import free_port, wait_until_up
from openautoglm.converters.cvat_wire import from_nuclio
from tests.backends.cvat_ui import decode_interactor_answer

ROOT = Path(__file__).resolve().parents[2]
CVAT_ROOT = ROOT / ".cache" / "cvat-server"
ADMIN = ("admin", "local-Admin-1")
IMAGES = ["000000000009.jpg", "000000000025.jpg", "000000000030.jpg", "000000000036.jpg", "000000000049.jpg"]
CONFIDENCE = {"name": "confidence", "mutable": True, "input_type": "text", "values": [""]}

pytestmark = pytest.mark.integration


def _cvat_environment(backend_port: int, cvat_port: int) -> dict[str, str]:
    return {**os.environ, "CVAT_ROOT": str(CVAT_ROOT), "BACKEND_URL": f"http://127.0.0.1:{backend_port}",
            "CVAT_PORT": str(cvat_port)}


@pytest.fixture(scope="module")
def servers(shared: Path, tmp_path_factory):
    scripts = shared / "cvat-server"
    if not (scripts / "install.sh").is_file():
        pytest.skip(f"no CVAT server scripts in {scripts}")
    work = tmp_path_factory.mktemp("cvat")
    backend_port, cvat_port = free_port(), free_port()
    env = _cvat_environment(backend_port, cvat_port)
    install = subprocess.run(["bash", str(scripts / "install.sh")], env=env, capture_output=True, text=True)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-3000:]
    backend_env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(shared / "models"), "OPENAUTOGLM_OFFLINE": "1",
                   "OPENAUTOGLM_HOME": str(work / "home"),
                   "OPENAUTOGLM_CVAT_PIPELINES": "yolo-sam,no-such-pipeline"}  # the last one fails to load
    log = work / "backend.log"
    backend = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1", "--port",
                                str(backend_port), "--workers", "1", "--model", "yolo"], env=backend_env,
                               stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{backend_port}/health", 120, backend, log)
        started = subprocess.run(["bash", str(scripts / "start.sh")], env=env, capture_output=True, text=True)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-3000:]
        yield {"cvat": f"http://127.0.0.1:{cvat_port}", "backend": f"http://127.0.0.1:{backend_port}",
               "log": log, "env": env}
    finally:
        subprocess.run(["bash", str(scripts / "stop.sh")], env=env, capture_output=True)
        backend.terminate()
        backend.wait(timeout=30)


def _api(servers, method: str, path: str, expect: int | None = None, **kwargs):
    response = requests.request(method, f"{servers['cvat']}{path}", auth=ADMIN, timeout=120, **kwargs)
    if expect is not None:
        assert response.status_code == expect, (path, response.status_code, response.text[:1000])
    else:
        assert response.status_code < 300, (path, response.status_code, response.text[:1000])
    return response.json() if response.content else None


def _wait_request(servers, path: str, seconds: float = 300) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        state = _api(servers, "GET", path)
        if state["status"] in ("finished", "failed"):
            assert state["status"] == "finished", state
            return state
        assert time.monotonic() < deadline, f"{path} still {state['status']}"
        time.sleep(1)


def _make_task(servers, shared: Path, name: str, labels: list[dict]) -> int:
    task = _api(servers, "POST", "/api/tasks", json={"name": name, "labels": labels})["id"]
    folder = shared / "data" / "coco128-train" / "images"
    files = {f"client_files[{i}]": (image, open(folder / image, "rb"), "image/jpeg") for i, image in enumerate(IMAGES)}
    queued = _api(servers, "POST", f"/api/tasks/{task}/data", files=files, data={"image_quality": 100})
    _wait_request(servers, f"/api/requests/{queued['rq_id']}")
    return task


def _frame(servers, task: int, number: int) -> bytes:
    response = requests.get(f"{servers['cvat']}/api/tasks/{task}/data", auth=ADMIN, timeout=60,
                            params={"type": "frame", "number": number, "quality": "original"})
    assert response.status_code == 200
    return response.content


def _backend(servers, function: str, body: dict):
    response = requests.post(f"{servers['backend']}/api/function_invocations", json=body, timeout=120,
                             headers={"x-nuclio-function-name": function})
    assert response.status_code == 200, response.text
    return response.json()


def _auto_annotate(servers, task: int, function: str, **options) -> list[dict]:
    body = {"function": function, "task": task, "cleanup": True, "threshold": 0.3, "convMaskToPoly": False, **options}
    request = _api(servers, "POST", "/api/lambda/requests", json=body)
    _wait_request(servers, f"/api/lambda/requests/{request['id']}")
    return _api(servers, "GET", f"/api/tasks/{task}/annotations")["shapes"]


def _labels(servers, task: int) -> dict[int, str]:
    return {label["id"]: label["name"] for label in _api(servers, "GET", f"/api/labels?task_id={task}")["results"]}


def test_cvat_lists_every_loadable_pipeline(servers) -> None:
    functions = {f["id"]: f for f in _api(servers, "GET", "/api/lambda/functions")}
    assert {"openautoglm-yolo", "openautoglm-yolo-sam", "openautoglm-segmenter"} <= set(functions)
    assert not [name for name in functions if "no-such-pipeline" in name]
    assert functions["openautoglm-segmenter"]["kind"] == "interactor"
    version = requests.get(f"{servers['backend']}/health", timeout=5).json()["model_version"]
    assert version.split("+calibration")[0] in functions["openautoglm-yolo"]["description"]


def test_auto_annotation_stores_the_backends_boxes_with_confidence(servers, shared: Path) -> None:
    from openautoglm.cli.label_config import label_config

    # person and giraffe as `openautoglm label-config --for cvat` declares them; bus without the
    # confidence attribute: CVAT drops it
    labels = json.loads(label_config(["person", "giraffe"], "cvat")) + [{"name": "bus"}]
    task = _make_task(servers, shared, "openautoglm boxes", labels)
    shapes = _auto_annotate(servers, task, "openautoglm-yolo")
    names = _labels(servers, task)
    attribute_names = {spec["id"]: spec["name"] for label in _api(servers, "GET", f"/api/labels?task_id={task}")[
        "results"] for spec in label["attributes"]}
    assert shapes and {s["type"] for s in shapes} == {"rectangle"}
    for frame in range(len(IMAGES)):
        image = base64.b64encode(_frame(servers, task, frame)).decode()
        want = [s for s in _backend(servers, "openautoglm-yolo", {"image": image, "threshold": 0.3})
                if s["label"] in {"person", "giraffe", "bus"}]
        got = [s for s in shapes if s["frame"] == frame]
        assert len(got) == len(want), frame
        key = lambda shape: tuple(np.round(shape["points"], 1))  # noqa: E731
        for stored, answered in zip(sorted(got, key=key), sorted(want, key=key)):
            assert names[stored["label_id"]] == answered["label"]
            np.testing.assert_allclose(stored["points"], answered["points"], atol=1e-3)
            stored_attributes = {attribute_names[a["spec_id"]]: a["value"] for a in stored["attributes"]}
            if answered["label"] == "bus":
                assert stored_attributes == {}
            else:
                assert stored_attributes == {"confidence": answered["confidence"]}
                assert float(answered["confidence"]) >= 0.3


def test_masks_stored_as_masks_and_as_polygons(servers, shared: Path) -> None:
    task = _make_task(servers, shared, "openautoglm masks", [{"name": "person", "attributes": [CONFIDENCE]}])
    frames = {n: base64.b64encode(_frame(servers, task, n)).decode() for n in range(len(IMAGES))}
    meta = _api(servers, "GET", f"/api/tasks/{task}/data/meta")["frames"]
    masks = _auto_annotate(servers, task, "openautoglm-yolo-sam")
    assert masks and {s["type"] for s in masks} == {"mask"}
    for frame, image in frames.items():
        width, height = meta[frame]["width"], meta[frame]["height"]
        want = [s for s in _backend(servers, "openautoglm-yolo-sam", {"image": image, "threshold": 0.3})
                if s["label"] == "person"]
        got = [s for s in masks if s["frame"] == frame]
        assert len(got) == len(want), frame
        want_bitmaps = sorted((from_nuclio(s["mask"], width, height).to_array() for s in want), key=np.sum)
        got_bitmaps = sorted((_cvat_mask(s["points"], width, height) for s in got), key=np.sum)
        for stored, answered in zip(got_bitmaps, want_bitmaps):
            assert np.array_equal(stored, answered)
    polygons = _auto_annotate(servers, task, "openautoglm-yolo-sam", convMaskToPoly=True)
    assert len(polygons) == len(masks) and {s["type"] for s in polygons} == {"polygon"}
    for frame, image in frames.items():
        want = sorted(s["points"] for s in _backend(servers, "openautoglm-yolo-sam", {"image": image, "threshold": 0.3})
                      if s["label"] == "person")
        got = sorted(s["points"] for s in polygons if s["frame"] == frame)
        assert len(got) == len(want)
        for stored, answered in zip(got, want):
            np.testing.assert_allclose(stored, answered, atol=1e-3)


def _cvat_mask(points: list[float], width: int, height: int) -> np.ndarray:
    from cvat_sdk.masks import decode_mask

    return decode_mask([int(v) for v in points], image_width=width, image_height=height)


def test_label_mapping_to_the_tasks_own_names(servers, shared: Path) -> None:
    task = _make_task(servers, shared, "openautoglm mapping", [{"name": "pedestrian", "attributes": [CONFIDENCE]}])
    mapping = {"person": {"name": "pedestrian", "attributes": {"confidence": "confidence"}}}
    shapes = _auto_annotate(servers, task, "openautoglm-yolo", mapping=mapping)
    assert shapes and set(_labels(servers, task).values()) == {"pedestrian"}
    assert all(len(s["attributes"]) == 1 and float(s["attributes"][0]["value"]) >= 0.3 for s in shapes)


def test_a_frame_outside_the_task_is_refused_and_the_backend_keeps_serving(servers, shared: Path) -> None:
    task = _make_task(servers, shared, "openautoglm bad frame", [{"name": "person"}])
    answer = _api(servers, "POST", "/api/lambda/functions/openautoglm-yolo", expect=400,
                  json={"task": task, "frame": len(IMAGES) + 10})
    assert answer
    assert requests.get(f"{servers['backend']}/health", timeout=5).status_code == 200
    assert _api(servers, "POST", "/api/lambda/functions/openautoglm-yolo", json={"task": task, "frame": 0}) is not None


def test_interactor_answer_reaches_cvat_ui_as_a_mask(servers, shared: Path) -> None:
    task = _make_task(servers, shared, "openautoglm interactor", [{"name": "person"}])
    job = _api(servers, "GET", f"/api/jobs?task_id={task}")["results"][0]["id"]
    meta = _api(servers, "GET", f"/api/tasks/{task}/data/meta")["frames"][0]
    click = {"pos_points": [[meta["width"] // 2, meta["height"] // 2]], "neg_points": []}
    answer = _api(servers, "POST", "/api/lambda/functions/openautoglm-segmenter",
                  json={"task": task, "job": job, "frame": 0, **click})
    bitmap = decode_interactor_answer(answer, meta["width"], meta["height"])
    assert bitmap.any() and len(answer["mask"]) < meta["height"]  # a crop, not the full image
    direct = _backend(servers, "openautoglm-segmenter", {"image": base64.b64encode(_frame(servers, task, 0)).decode(),
                                                         **click})
    assert np.array_equal(bitmap, decode_interactor_answer(direct, meta["width"], meta["height"]))


def test_cvat_cli_runs_the_sdk_function_against_the_server(servers, shared: Path) -> None:
    task = _make_task(servers, shared, "openautoglm cli", [{"name": "person"}, {"name": "giraffe"}])
    env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(shared / "models"), "OPENAUTOGLM_OFFLINE": "1",
           "PASS": ADMIN[1]}
    cli = Path(sys.executable).with_name("cvat-cli")
    run = subprocess.run([str(cli), "--server-host", servers["cvat"], "--auth", ADMIN[0], "task", "auto-annotate",
                          str(task), "--function-module", "openautoglm.backends.cvat_function",
                          "-p", "model=str:yolo", "-p", "threshold=float:0.3", "--allow-unmatched-labels"],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    shapes = _api(servers, "GET", f"/api/tasks/{task}/annotations")["shapes"]
    twin = _make_task(servers, shared, "openautoglm cli twin", [{"name": "person"}, {"name": "giraffe"}])
    direct = _auto_annotate(servers, twin, "openautoglm-yolo")
    assert shapes and len(shapes) == len(direct)
    unmatched = [np.asarray(s["points"]) for s in direct]
    for shape in shapes:  # the same boxes, whichever route; within a pixel (the SDK path has its own rounding)
        index = next((i for i, box in enumerate(unmatched) if np.abs(box - shape["points"]).max() <= 1.0), None)
        assert index is not None, shape
        unmatched.pop(index)
