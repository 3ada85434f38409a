"""One large /predict without a time budget (OPENAUTOGLM_PREDICT_BUDGET_S=off), as Label Studio sends
Retrieve Predictions: N tasks in one request to `openautoglm serve` with the real YOLOv8n, images
over HTTP. Measured: tasks per minute and the server's peak memory above idle, with 2 worker
processes (the request's pages shared by both) against the named baseline, the same request to a
server with 1 worker (the request on one process, as every request ran before pages were
shared), in the same run, alternating A B B A so drift hits both alike. Prints the ratio (goal >= 1.7).

    python benchmarks/large_request.py [--tasks 1500] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from processes import free_port, process_tree, rss_mb, wait_until_up  # beside this script
from serve_bench import CONFIG, IMAGES, SHARED, serve_images


def one_request(workers: int, names: list[str], image_host: str) -> tuple[float, float, int]:
    """(seconds, peak MiB above idle, tasks answered with a prediction) for one fresh server."""
    work = Path(tempfile.mkdtemp(prefix="openautoglm-large-request-"))
    port = free_port()
    env = {**os.environ, "LABEL_STUDIO_URL": image_host, "OPENAUTOGLM_HOME": str(work / "home"),
           "OPENAUTOGLM_MODEL_DIR": str(SHARED / "models"), "OPENAUTOGLM_OFFLINE": "1",
           "OPENAUTOGLM_PREDICT_BUDGET_S": "off", "OPENAUTOGLM_ACCESS_LOG": "0"}
    env.pop("LABEL_STUDIO_API_KEY", None)
    with open(work / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", 180, server, work / "server.log")
        for n in range(4 * workers):  # every worker loaded and warm
            requests.post(f"{url}/predict", json=_body(names[:1], first=10_000_000 + n), timeout=120)
        time.sleep(2)
        idle, peak, stop = rss_mb(process_tree(server.pid)), [0.0], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb(process_tree(server.pid)))
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()
        started = time.perf_counter()
        answer = requests.post(f"{url}/predict", json=_body(names), timeout=3600)
        seconds = time.perf_counter() - started
        stop.set()
        answer.raise_for_status()
        results = answer.json()["results"]
        return seconds, peak[0] - idle, sum(1 for r in results if isinstance(r, dict) and "result" in r)
    finally:
        server.terminate()
        server.wait(timeout=60)


def _body(names: list[str], first: int = 1) -> dict:
    return {"tasks": [{"id": first + n, "data": {"image": f"/{name}"}} for n, name in enumerate(names)],
            "label_config": CONFIG, "project": "1.1700000000"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs, alternating A B B A")
    args = parser.parse_args()
    sources = sorted(p.name for p in IMAGES.glob("*.jpg"))
    names = [sources[n % len(sources)] for n in range(args.tasks)]
    image_host = serve_images()
    runs: dict[int, list[tuple[float, float, int]]] = {1: [], 2: []}
    for round_ in range(args.rounds):
        for workers in ((1, 2) if round_ % 2 == 0 else (2, 1)):
            seconds, above_idle, answered = one_request(workers, names, image_host)
            runs[workers].append((seconds, above_idle, answered))
            print(f"{workers} worker(s): {args.tasks} tasks in {seconds:.1f} s = {60 * args.tasks / seconds:.0f} "
                  f"tasks/min; answered with a prediction {answered}; peak {above_idle:.0f} MiB above idle",
                  flush=True)
    ratios = [one[0] / two[0] for one, two in zip(runs[1], runs[2])]
    print(f"tasks per minute, 2 workers / 1 worker (baseline): {statistics.median(ratios):.2f} "
          f"(per round {', '.join(f'{r:.2f}' for r in ratios)}; goal >= 1.7)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
