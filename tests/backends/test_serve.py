"""`openautoglm serve` (what `make serve` runs) starts gunicorn, loads the model and answers /health."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_health(shared, tmp_path) -> None:
    port = _free_port()
    env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(shared / "models"), "OPENAUTOGLM_OFFLINE": "1",
           "OPENAUTOGLM_STORE": str(tmp_path / "reviews.sqlite3"), "OPENAUTOGLM_CACHE_DIR": str(tmp_path / "cache")}
    server = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1",
                               "--port", str(port), "--model", "yolox"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    assert response.status == 200 and b'"UP"' in response.read()
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not answer /health within 30 s"
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=10)
