"""The bad-input and fault battery against `openautoglm serve --workers 2` with the real YOLOv8n:
each case below is sent as a client would, and every answer must be below 500 with the normal
tasks of a request still predicted; no worker may restart. Then 8 concurrent /predict requests,
each holding a 13000x13000 PNG (170 KB, 169 million pixels) and a normal image: the server's
memory above idle (goal < 1.5 GB; the baseline, named in the output, is the same 8 requests with
normal images only), and /health polled throughout.

    python benchmarks/bad_input.py
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from PIL import Image
from processes import free_port, process_tree, rss_mb, wait_until_up  # beside this script
from serve_bench import CONFIG, IMAGES, SHARED

_open_sockets: list[socket.socket] = []


def image_host() -> tuple[str, int]:
    """Serves /normal.jpg (a coco128 image), /bomb.png, /truncated.jpg, /text.jpg, /tiny.png,
    /to-metadata (a redirect); and a port that accepts connections and never answers."""
    normal = next(IMAGES.glob("*.jpg")).read_bytes()
    buffer = io.BytesIO()
    Image.new("L", (13000, 13000)).save(buffer, "PNG")
    tiny = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 128, 0)).save(tiny, "PNG")
    bodies = {"/normal.jpg": normal, "/bomb.png": buffer.getvalue(), "/truncated.jpg": normal[:len(normal) // 3],
              "/text.jpg": b"this is not a jpeg", "/tiny.png": tiny.getvalue()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/to-metadata":
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)  # accepted by the kernel, never answered
    _open_sockets.append(hanging)  # closed when collected: then the port would refuse instead of hang
    return f"http://127.0.0.1:{server.server_address[1]}", hanging.getsockname()[1]


_ids = iter(range(1, 10**9))  # task ids never repeat: a task a finished job held stays held a minute


def predict(url: str, images: list, timeout: float = 600) -> requests.Response:
    tasks = [{"id": next(_ids), "data": {"image": image}} if isinstance(image, str) else image
             for image in images]
    return requests.post(f"{url}/predict", json={"tasks": tasks, "label_config": CONFIG}, timeout=timeout)


def cases(host: str, hanging: int) -> list[tuple[str, callable]]:
    closed = free_port()
    normal = f"{host}/normal.jpg"

    def body(size_mb: int):
        return lambda url: requests.post(f"{url}/predict", data=b'{"tasks": [], "pad": "' + b"x" * (size_mb << 20)
                                         + b'"}', headers={"Content-Type": "application/json"}, timeout=120)

    def webhook(event: dict):
        return lambda url: requests.post(f"{url}/webhook", json=event, timeout=30)

    return [
        ("bomb: 13000x13000 PNG", lambda url: predict(url, [f"{host}/bomb.png", normal])),
        ("truncated JPEG", lambda url: predict(url, [f"{host}/truncated.jpg", normal])),
        ("text as JPEG", lambda url: predict(url, [f"{host}/text.jpg", normal])),
        ("metadata address", lambda url: predict(url, ["http://169.254.169.254/latest/meta-data/", normal])),
        ("redirect to metadata", lambda url: predict(url, [f"{host}/to-metadata", normal])),
        ("refused port", lambda url: predict(url, [f"http://127.0.0.1:{closed}/x.jpg", normal])),
        ("hanging host", lambda url: predict(url, [f"http://127.0.0.1:{hanging}/x.jpg", normal])),
        ("file:// URL", lambda url: predict(url, ["file:///etc/passwd", normal])),
        ("malformed URL", lambda url: predict(url, ["normal.jpg", normal])),
        ("non-object tasks", lambda url: predict(url, ["oops", 7, None, {"id": 9, "data": {"image": normal}}])),
        ("1,000 tiny tasks", lambda url: predict(url, [f"{host}/tiny.png"] * 1000)),
        ("nested JSON", lambda url: requests.post(f"{url}/predict", data="[" * 100_000 + "]" * 100_000,
                                                  headers={"Content-Type": "application/json"}, timeout=30)),
        ("50 MB body", body(50)),
        ("100 MB body", body(100)),
        ("webhook without annotation id", webhook({"action": "ANNOTATION_CREATED", "task": {"id": 1}})),
        ("webhook with an unused action", webhook({"action": "PROJECT_UPDATED", "project": {"id": 1}})),
    ]


def normal_tasks_predicted(answer: requests.Response) -> str:
    if answer.status_code != 200 or not answer.request.url.endswith("/predict"):
        return ""
    results = answer.json().get("results") or []
    failed = sum(1 for r in results if isinstance(r, dict) and r.get("score") == 0.0 and not r.get("result"))
    return f", {len(results)} answered, {failed} failed (score 0, no result)"


def concurrent_peak(url: str, pid: int, images: list[str]) -> tuple[float, int, int, int]:
    """(peak MiB above idle, answers >= 500, normal tasks predicted, failed /health polls) for 8
    concurrent /predict requests of `images` each."""
    idle, peak, stop, health_failures = rss_mb(process_tree(pid)), [0.0], threading.Event(), [0]

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(process_tree(pid)))
            try:
                requests.get(f"{url}/health", timeout=5).raise_for_status()
            except requests.RequestException:
                health_failures[0] += 1
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: predict(url, images), range(8)))
    stop.set()
    predicted = sum(1 for a in answers if a.status_code == 200
                    for r, image in zip(a.json()["results"], images)
                    if "normal" in image and isinstance(r, dict) and r.get("result"))
    return peak[0] - idle, sum(a.status_code >= 500 for a in answers), predicted, health_failures[0]


def main() -> int:
    host, hanging = image_host()
    work = Path(tempfile.mkdtemp(prefix="openautoglm-bad-input-"))
    port = free_port()
    env = {**os.environ, "LABEL_STUDIO_URL": host, "OPENAUTOGLM_HOME": str(work / "home"),
           "OPENAUTOGLM_MODEL_DIR": str(SHARED / "models"), "OPENAUTOGLM_OFFLINE": "1",
           "OPENAUTOGLM_FETCH_TIMEOUT": "5", "OPENAUTOGLM_ACCESS_LOG": "0"}
    with open(work / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", 180, server, work / "server.log")
        for _ in range(4):
            predict(url, [f"{host}/normal.jpg"])
        workers = set(process_tree(server.pid)) - {server.pid}
        errors = 0
        for name, send in cases(host, hanging):
            started = time.perf_counter()
            answer = send(url)
            errors += answer.status_code >= 500
            print(f"{name}: HTTP {answer.status_code} in {time.perf_counter() - started:.1f} s"
                  f"{normal_tasks_predicted(answer)}", flush=True)
        normal = [f"{host}/normal.jpg"] * 2
        base = concurrent_peak(url, server.pid, normal)
        bombs = concurrent_peak(url, server.pid, [f"{host}/bomb.png", f"{host}/normal.jpg"])
        restarted = workers != set(process_tree(server.pid)) - {server.pid}
        print(f"8 concurrent requests, normal images only (baseline): peak {base[0]:.0f} MiB above idle")
        print(f"8 concurrent requests each with a 13000x13000 PNG: peak {bombs[0]:.0f} MiB above idle (goal < 1536), "
              f"answers >= 500: {bombs[1]}, normal tasks predicted {bombs[2]} of 8, /health failures {bombs[3]}; "
              f"ratio to the baseline's peak {bombs[0] / max(base[0], 1.0):.2f}")
        print(json.dumps({"answers_500": errors + bombs[1], "worker_restarts": int(restarted)}))
        return 0
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
