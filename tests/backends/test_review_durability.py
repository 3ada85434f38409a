"""No acknowledged review is lost: Label Studio sends each webhook once, so an event answered 200
must survive the server being stopped (SIGTERM, as a deploy does) or killed right after."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from openautoglm.cli.serve import gunicorn_command
from tests.backends.test_serve import ROOT, _free_port, _slow_app_environment, _wait_for_health

EVENTS = 300
CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          '<Label value="cat"/></RectangleLabels></View>')


def _post(port: int, path: str, body: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return json.loads(response.read())


def _annotation(number: int) -> dict:
    """An annotation with 80 boxes against a prediction of 80: enough matching work that events are
    still waiting when the server stops (as in the issue: 288 of 300 were lost)."""
    result = [{"id": f"r{number}-{k}", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
               "original_width": 64, "original_height": 48,
               "value": {"x": k % 10 * 9, "y": k // 10 * 9, "width": 8, "height": 8, "rotation": 0,
                         "rectanglelabels": ["cat"]}} for k in range(80)]
    return {"action": "ANNOTATION_CREATED", "task": {"id": number},
            "annotation": {"id": 10_000 + number, "task": number, "result": result}}


def _start(env: dict, port: int) -> subprocess.Popen:
    command = gunicorn_command("tests.backends.slow_app:create()", "127.0.0.1", port, workers=2, threads=4,
                               timeout=60)
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                              start_new_session=True)
    _wait_for_health(port, server)
    return server


def _annotations_stored(store) -> int:
    with sqlite3.connect(store, timeout=30) as db:
        return db.execute("SELECT count(DISTINCT annotation_id) FROM outcomes").fetchone()[0]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_every_acknowledged_event_is_matched_after_a_restart(tmp_path, image_server, stop) -> None:
    env = {**_slow_app_environment(tmp_path, image_server.url, 0), "SLOW_REGIONS": "80"}
    store = env["OPENAUTOGLM_STORE"]
    port = _free_port()
    server = _start(env, port)
    try:
        tasks = [{"id": n, "data": {"image": "/img.png"}} for n in range(EVENTS)]
        _post(port, "/predict", {"tasks": tasks, "label_config": CONFIG})
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda n: _post(port, "/webhook", _annotation(n)), range(EVENTS)))
        assert len(answers) == EVENTS
        os.killpg(server.pid, stop)  # right after the last acknowledgement, workers and all
        server.wait(timeout=30)
        before = _annotations_stored(store)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
    server = _start(env, _free_port())
    try:
        deadline = time.monotonic() + 60
        while _annotations_stored(store) < EVENTS and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _annotations_stored(store) == EVENTS, f"{before} matched before the stop"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
