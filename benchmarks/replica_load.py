"""Two `openautoglm serve` replicas on one PostgreSQL review store under load: 8 client threads for
`--seconds` (default 120), each predicting a coco128 task on one replica and submitting its
annotation (the prediction with its last region dropped, an edit) to the other replica's /webhook,
as Label Studio does behind a load balancer. The replicas refit every 50 reviews meanwhile
(OPENAUTOGLM_REFIT_EVERY), one at a time through the database lock. Afterwards every acknowledged
annotation must have its outcome in the store: the ratio stored / acknowledged must be 1.000.

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/replica_load.py [--seconds 120]

Needs PostgreSQL's server binaries (Debian's `postgresql` package) and psycopg.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from postgres_server import PostgresServer  # beside this script

ROOT = Path(__file__).resolve().parents[1]

IMAGES = ROOT.parent / "shared" / "data" / "coco128-train" / "images"
LABELS = ["person", "car", "bus", "truck", "bicycle", "dog", "cat", "chair", "bottle", "cup"]
CONFIG = ('<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">'
          + "".join(f'<Label value="{label}"/>' for label in LABELS) + "</RectangleLabels></View>")
CLIENTS = 8


def _post(port: int, path: str, body: dict, timeout: float = 120) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def _serve_images() -> tuple[http.server.ThreadingHTTPServer, list[str]]:
    handler = functools.partial(_QuietHandler, directory=str(IMAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    names = sorted(p.relative_to(IMAGES).as_posix() for p in IMAGES.rglob("*.jpg"))
    return server, [f"http://127.0.0.1:{server.server_address[1]}/{name}" for name in names]


def _start_replica(store: str, home: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "OPENAUTOGLM_STORE": store, "OPENAUTOGLM_HOME": str(home),
           "OPENAUTOGLM_CACHE_DIR": str(home / "cache"), "OPENAUTOGLM_REFIT_EVERY": "50"}
    command = [str(Path(sys.executable).parent / "openautoglm"), "serve", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--threads", "4"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(home / "server.log", "w"),
                              start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return server, port
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"replica exited; see {home / 'server.log'}") from None
            time.sleep(0.5)
    raise RuntimeError(f"replica did not answer /health; see {home / 'server.log'}")


def _client(number: int, ports: list[int], urls: list[str], deadline: float, counts: dict, lock) -> None:
    k = 0
    while time.monotonic() < deadline:
        task = number * 1_000_000 + k
        first, second = ports[(number + k) % 2], ports[(number + k + 1) % 2]
        body = {"tasks": [{"id": task, "data": {"image": urls[(number * 17 + k) % len(urls)]}}],
                "label_config": CONFIG, "project": "1.1700000000"}
        try:
            (prediction,) = _post(first, "/predict", body)["results"]
            event = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "task": {"id": task},
                     "annotation": {"id": task, "task": task, "result": prediction["result"][:-1]}}
            _post(second, "/webhook", event)
            with lock:
                counts["acknowledged"] += 1
        except OSError as error:  # refused or timed out: not acknowledged, so Label Studio would know
            with lock:
                counts["errors"] += 1
                counts["last_error"] = repr(error)
        k += 1


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    import psycopg

    folder = Path(tempfile.mkdtemp(prefix="openautoglm-replicas-", dir="/tmp"))
    folder.chmod(0o755)  # the server runs as the postgres user when this runs as root
    postgres = PostgresServer(folder / "postgres").start()
    image_server, urls = _serve_images()
    replicas = []
    try:
        store = postgres.fresh_database("reviews")
        for name in ("a", "b"):
            (folder / name).mkdir()
            replicas.append(_start_replica(store, folder / name))
        ports = [port for _, port in replicas]
        counts, lock = {"acknowledged": 0, "errors": 0, "last_error": None}, threading.Lock()
        started = time.monotonic()
        clients = [threading.Thread(target=_client, args=(n, ports, urls, started + args.seconds, counts, lock))
                   for n in range(CLIENTS)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        elapsed = time.monotonic() - started
        with psycopg.connect(store) as db:
            deadline = time.monotonic() + 120  # the journalled events still being matched
            while db.execute("SELECT count(*) FROM events").fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.5)
            stored = db.execute("SELECT count(DISTINCT annotation_id) FROM outcomes WHERE kind = 'task'").fetchone()[0]
            failed = db.execute("SELECT count(*) FROM failed_events").fetchone()[0]
        refits = sum(_metric(port, 'openautoglm_refits_total{result="done"}') for port in ports)
        failed_refits = sum(_metric(port, 'openautoglm_refits_total{result="failed"}') for port in ports)
        acknowledged = counts["acknowledged"]
        print(f"2 replicas, {CLIENTS} clients, {elapsed:.0f} s: {acknowledged} tasks predicted and reviewed "
              f"({acknowledged / elapsed:.2f}/s), {counts['errors']} requests failed"
              f"{' (' + counts['last_error'] + ')' if counts['errors'] else ''}; outcomes stored {stored}, "
              f"lost {acknowledged - stored}, failed events {failed}; refits done {refits:.0f}, failed "
              f"{failed_refits:.0f}; ratio stored / acknowledged {stored / max(1, acknowledged):.3f}")
    finally:
        for server, _ in replicas:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        image_server.shutdown()
        postgres.stop()


if __name__ == "__main__":
    main()
