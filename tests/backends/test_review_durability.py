"""No acknowledged review is lost: Label Studio sends each webhook once, so an event answered 200
must survive the server being stopped (SIGTERM, as a deploy does) or killed right after."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
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


REFIT_FOREVER = """
import random, sys
from pathlib import Path
from openautoglm.converters import Box, Region, Shape
from openautoglm.model.reviews.refit import refit
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.scoring import ImageEvidence

store, out = ReviewStore(sys.argv[1]), Path(sys.argv[2])
if not store.reviewed_count("p@1"):
    rng = random.Random(0)
    for task in range(400):
        raw = [rng.random() for _ in range(3)]
        regions = [Region("cat", Shape.BOX, Box(0, 0, 10, 10), score=s) for s in raw]
        store.save_predictions("p@1+calibration-a", [(task, regions, ImageEvidence.of_scores(raw, [0.1]), 0.5)])
        store.record(f"a{task}", task, "p@1+calibration-a",
                     [("cat", s, int(rng.random() < s), "prediction", s, None) for s in raw])
print("ready", flush=True)
while True:
    refit(store, "p@1", 0.25, None, out)
"""


def test_a_refit_killed_at_any_moment_leaves_the_old_calibration_or_the_new_one(tmp_path) -> None:
    """kill -9 during refits: the calibration file is always whole (or not there yet), the store
    passes SQLite's integrity check and keeps every review; its durability settings are WAL and
    synchronous=FULL (a committed transaction survives a power loss too)."""
    from openautoglm.model.reviews.store import ReviewStore
    from openautoglm.model.scores.calibration import Calibration

    store, out = tmp_path / "reviews.sqlite3", tmp_path / "calibrations" / "p.calibration.json"
    script = tmp_path / "refit_forever.py"
    script.write_text(REFIT_FOREVER)
    for delay in (0.05, 0.3, 0.7, 1.1, 1.6, 2.2):
        process = subprocess.Popen([sys.executable, str(script), str(store), str(out)], cwd=ROOT,
                                   stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        process.kill()
        process.wait()
        if out.exists():
            assert Calibration.load(out).provenance["reviewed_tasks"] == 400
        with sqlite3.connect(store) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("SELECT COUNT(DISTINCT annotation_id) FROM outcomes").fetchone() == (400,)
    assert out.exists() and not [p for p in out.parent.iterdir() if p != out and not p.name.endswith(".tmp")]
    db = ReviewStore(store).db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
