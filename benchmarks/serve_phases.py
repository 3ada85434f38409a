"""Where a /predict's CPU goes: one server worker and one bare process side by side.

One gunicorn worker (4 threads, as `openautoglm serve` runs each) answers /predict with the real
YOLOv8n while one bare process (decode + propose in a loop) works through the same images on the
other core; the machine's speed drifts by 10 % within seconds, and running both sides at once lets
the drift hit them alike. Inside the worker each step's thread CPU time is summed; the worker's
process CPU time covers the rest (gunicorn, the kernel's share of the sockets). Printed per round,
then the median of the rounds, in ms of CPU per request (per image for the bare process).

    python benchmarks/serve_phases.py [--rounds 8] [--requests 256]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from serve_bench import IMAGES, SHARED, BareProcesses, cpu_seconds, free_port, run_clients, serve_images, wait_for_port


def timed_app():
    """The server's app with each step of /predict timed in thread CPU; GET /phases reads the sums."""
    from openautoglm.backends.app import create_app
    from openautoglm.backends.label_studio import images, predictor
    from openautoglm.model.reviews import store as reviews

    sums, lock = collections.Counter(), threading.Lock()

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                with lock:
                    sums[name] += time.thread_time() - started
        return wrapper

    images.DiskCache.get = timed("cache", images.DiskCache.get)
    images.decode_image = timed("decode", images.decode_image)
    predictor.Predictor._encode = timed("encode", predictor.Predictor._encode)
    predictor.Predictor.predict = timed("predict", predictor.Predictor.predict)
    reviews.ReviewStore.save_predictions = timed("store", reviews.ReviewStore.save_predictions)
    app = create_app()
    pipeline = app.extensions["openautoglm"].pipeline
    pipeline.propose = timed("propose", pipeline.propose)
    app.wsgi_app = timed("flask", app.wsgi_app)

    @app.get("/phases")
    def phases():
        return {"pid": os.getpid(), **sums}

    return app


def read_phases(port: int) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/phases")
    answer = json.loads(connection.getresponse().read())
    connection.close()
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--requests", type=int, default=256, help="per round, on each side")
    args = parser.parse_args()
    os.environ.setdefault("OPENAUTOGLM_MODEL_DIR", str(SHARED / "models"))
    names = sorted(p.name for p in IMAGES.glob("*.jpg"))
    workload = [names[i % len(names)] for i in range(args.requests)]
    work = Path(tempfile.mkdtemp(prefix="openautoglm-serve-phases-"))
    env = {**os.environ, "LABEL_STUDIO_URL": serve_images(), "OPENAUTOGLM_STORE": str(work / "reviews.sqlite3"),
           "OPENAUTOGLM_CACHE_DIR": str(work / "cache"), "PYTHONPATH": str(Path(__file__).parent)}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--worker-class",
                               "gthread", "--workers", "1", "--threads", "4", "--worker-connections", "4",
                               "--keep-alive", "0", "serve_phases:timed_app()"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bare = BareProcesses(1)  # loaded and warm
    bare_pid = bare.processes[0].pid

    try:
        wait_for_port(port)
        run_clients(port, names, range(len(names)), 4)  # every image cached, the model warm
        worker = read_phases(port)["pid"]
        rows = []
        for number in range(args.rounds):
            before, worker_cpu, bare_cpu = read_phases(port), cpu_seconds([worker]), cpu_seconds([bare_pid])
            bare_decode, bare_propose = bare.decode_cpu, bare.propose_cpu
            side = threading.Thread(target=bare.run, args=(workload,))
            side.start()
            run_clients(port, workload, range(len(workload)), 4)
            side.join()
            after, count = read_phases(port), len(workload)
            ms = {key: (after[key] - before.get(key, 0.0)) / count * 1000 for key in after if key != "pid"}
            worker_ms = (cpu_seconds([worker]) - worker_cpu) / count * 1000
            row = {"worker": worker_ms, "gunicorn + sockets": worker_ms - ms["flask"],
                   "Flask + routes": ms["flask"] - ms["predict"] - ms["store"],
                   "store": ms["store"], "encode": ms["encode"], "cache": ms["cache"], "decode": ms["decode"],
                   "predict's own": ms["predict"] - ms["propose"] - ms["decode"] - ms["encode"] - ms["cache"],
                   "propose": ms["propose"], "bare process": (cpu_seconds([bare_pid]) - bare_cpu) / count * 1000,
                   "bare decode": (bare.decode_cpu - bare_decode) / count * 1000,
                   "bare propose": (bare.propose_cpu - bare_propose) / count * 1000}
            rows.append(row)
            print(f"round {number + 1}: " + ", ".join(f"{key} {value:.2f}" for key, value in row.items()), flush=True)
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print("median ms of CPU per request: " + ", ".join(f"{key} {value:.2f}" for key, value in median.items()))
        print(f"worker - bare process {median['worker'] - median['bare process']:.2f} ms per request; "
              f"propose server / bare {statistics.median(r['propose'] / r['bare propose'] for r in rows):.3f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        bare.close()


if __name__ == "__main__":
    main()
