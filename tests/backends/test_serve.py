"""`openautoglm serve` (what `make serve` runs) starts gunicorn, loads the model and answers /health,
also while a slow prediction is running."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openautoglm.cli.serve import gunicorn_command, serve_environment

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_health(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                assert response.status == 200 and b'"UP"' in response.read()
                return
        except OSError:
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "server did not answer /health within 30 s"
            time.sleep(0.2)


def test_serve_answers_health_and_writes_only_into_its_data_folder(shared, tmp_path) -> None:
    port = _free_port()
    checkout, home, user = tmp_path / "checkout", tmp_path / "data", tmp_path / "user"
    checkout.mkdir(), user.mkdir()
    env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(shared / "models"), "OPENAUTOGLM_OFFLINE": "1",
           "OPENAUTOGLM_HOME": str(home), "HOME": str(user), "PYTHONPATH": str(ROOT)}
    env.pop("OPENAUTOGLM_STORE", None), env.pop("OPENAUTOGLM_CACHE_DIR", None)
    server = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--model", "yolox"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, cwd=checkout)
    try:
        _wait_for_health(port, server)
        assert (home / "reviews.sqlite3").is_file() and (home / f"gunicorn-{port}.ctl").exists()
        assert list(checkout.iterdir()) == [] and not (user / ".gunicorn").exists()
    finally:
        server.terminate()
        server.wait(timeout=10)


def _slow_app_environment(tmp_path: Path, image_url: str, seconds: float) -> dict[str, str]:
    """For tests.backends.slow_app: the real app around a pipeline that takes `seconds` per call."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "SLOW_SECONDS": str(seconds), "LABEL_STUDIO_URL": image_url,
            "OPENAUTOGLM_STORE": str(tmp_path / "reviews.sqlite3"), "OPENAUTOGLM_CACHE_DIR": str(tmp_path / "cache")}


def _predict_request(port: int) -> urllib.request.Request:
    body = json.dumps({"tasks": [{"id": 1, "data": {"image": "/img.png"}}],
                       "label_config": '<View><Image name="image" value="$image"/><RectangleLabels name="label" '
                                       'toName="image"><Label value="cat"/></RectangleLabels></View>'}).encode()
    return urllib.request.Request(f"http://127.0.0.1:{port}/predict", body, {"Content-Type": "application/json"})


def test_metrics_count_every_worker(tmp_path, image_server) -> None:
    """A scrape lands on one worker; it must still report the tasks every worker predicted."""
    port, slow = _free_port(), 1.5
    env = _slow_app_environment(tmp_path, image_server.url, slow)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    left = tmp_path / "home" / "metrics" / str(port)
    left.mkdir(parents=True)
    (left / "counter_123.db").write_bytes(b"counts a killed run left")
    env = serve_environment(env, tmp_path / "home", port)  # what `openautoglm serve` gives its workers
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(left) and left.is_dir() and not any(left.iterdir())
    command = gunicorn_command("tests.backends.slow_app:create()", "127.0.0.1", port, workers=2, threads=1, timeout=60)
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    sent, both_workers = 0, False
    try:
        _wait_for_health(port, server)
        with ThreadPoolExecutor(2) as pool:
            for _ in range(5):  # until a pair ran at the same time: one thread each, so on both workers
                started = time.monotonic()
                list(pool.map(lambda _: urllib.request.urlopen(_predict_request(port), timeout=30).read(), range(2)))
                sent += 2
                if time.monotonic() - started < 1.7 * slow:
                    both_workers = True
                    break
        assert both_workers, "the two workers never answered at the same time"
        for _ in range(4):  # whichever worker answers the scrape
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                assert f"openautoglm_tasks_total {float(sent)}" in response.read().decode()
        assert any(left.iterdir())
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert not left.exists()  # a clean shutdown takes its metrics files along


def test_health_answers_during_a_slow_prediction(tmp_path, image_server) -> None:
    """Label Studio gives /health 1 s; a prediction may take minutes."""
    port = _free_port()
    env = _slow_app_environment(tmp_path, image_server.url, 4)
    command = gunicorn_command("tests.backends.slow_app:create()", "127.0.0.1", port, workers=1, threads=2,
                               timeout=60)
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        _wait_for_health(port, server)
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(lambda: urllib.request.urlopen(_predict_request(port), timeout=30).read())
            time.sleep(1)  # the prediction is now inside the pipeline
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                assert response.status == 200
            assert time.monotonic() - started < 1 and not slow.done()
            assert json.loads(slow.result())["results"][0]["result"] == []
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_server_open_to_the_network_without_authentication_says_so() -> None:
    from openautoglm.cli.serve import open_access_warning

    assert "without authentication" in open_access_warning("0.0.0.0", {})
    assert "without authentication" in open_access_warning("0.0.0.0", {"BASIC_AUTH_USER": "a"})
    assert open_access_warning("0.0.0.0", {"BASIC_AUTH_USER": "a", "BASIC_AUTH_PASS": "b"}) is None
    assert open_access_warning("127.0.0.1", {}) is None
