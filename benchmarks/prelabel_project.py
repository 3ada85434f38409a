"""Retrieve Predictions on a whole Label Studio project, as a team with a real-size project does it:
a real Label Studio 1.23.2 (its defaults: one /predict for every task, 100 s window), `openautoglm
serve --workers 2` with the real YOLOv8n, N tasks over coco128's images (local files). Measured:
the time until every task holds a prediction, tasks with none or with two, the server's peak memory
above idle. Baseline in the same run: `openautoglm predict --workers 2` on the same N images into
Label Studio's format, plus Label Studio's own time to import that file (the command-line route,
whose tasks are also checked). Prints total / baseline (goal <= 1.3).

    python benchmarks/prelabel_project.py [--tasks 1500] [--shared-disk]

`--shared-disk`: the backend is given Label Studio's LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT and
reads the images from the disk, as a backend on Label Studio's machine can.

Label Studio runs from the virtual environment the live tests create (.cache/label-studio-1.23.2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from processes import cpu_seconds, free_port, process_tree, rss_mb, wait_until_up  # beside this script
from serve_bench import CONFIG

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
COCO128 = SHARED / "data" / "coco128-train" / "images"
LS = ROOT / ".cache" / "label-studio-1.23.2" / "bin" / "label-studio"
TOKEN = "openautoglm0bench0token012"
class LabelStudio:
    def __init__(self, url: str):
        self.url, self.headers = url, {"Authorization": f"Token {TOKEN}"}

    def __call__(self, method: str, path: str, **kwargs):
        answer = requests.request(method, f"{self.url}{path}", headers=self.headers, timeout=600, **kwargs)
        if answer.status_code >= 300:
            raise SystemExit(f"{method} {path}: HTTP {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def project(self, title: str, root: Path, names: list[str], with_tasks: bool = True) -> int:
        project = self("POST", "/api/projects", json={"title": title, "label_config": CONFIG})["id"]
        self("POST", "/api/storages/localfiles", json={"project": project, "path": str(root / "images"),
                                                       "use_blob_urls": True, "title": "images"})
        if with_tasks:
            self("POST", f"/api/projects/{project}/import",
                 json=[{"data": {"image": f"/data/local-files/?d=images/{name}"}} for name in names])
        return project

    def predictions_per_task(self, project: int) -> tuple[list[int], set[str]]:
        counts, versions, page = [], set(), 1
        while True:
            answer = requests.get(f"{self.url}/api/tasks", headers=self.headers, timeout=600,
                                  params={"project": project, "page": page, "page_size": 500, "fields": "all"})
            if answer.status_code == 404:
                return counts, versions
            tasks = answer.json()["tasks"]
            counts += [len(t["predictions"]) for t in tasks]
            versions |= {p["model_version"] for t in tasks for p in t["predictions"]}
            if len(tasks) < 500:
                return counts, versions
            page += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1500)
    parser.add_argument("--no-baseline", action="store_true", help="measure Retrieve Predictions only")
    parser.add_argument("--shared-disk", action="store_true", help="the backend reads local-files images from disk")
    args = parser.parse_args()
    if not LS.exists():
        raise SystemExit(f"{LS} is missing: run the live tests once (make test) to install Label Studio")
    work = Path(tempfile.mkdtemp(prefix="openautoglm-prelabel-"))
    (work / "images").mkdir()
    sources = sorted(COCO128.glob("*.jpg"))
    names = [f"{n:05d}_{sources[n % len(sources)].name}" for n in range(args.tasks)]
    for name, n in zip(names, range(args.tasks)):
        os.symlink(sources[n % len(sources)], work / "images" / name)
    ls_port, port = free_port(), free_port()
    environment = {**os.environ, "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
                   "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(work), "ML_BLOCK_LOCAL_IP": "false",
                   "SSRF_PROTECTION_ENABLED": "false", "LABEL_STUDIO_BASE_DATA_DIR": str(work / "base")}
    label_studio = subprocess.Popen([str(LS), "start", "--no-browser", "--port", str(ls_port), "--internal-host",
                                     "127.0.0.1", "--data-dir", str(work / "data"), "--username", "b@example.com",
                                     "--password", "openautoglm-pass", "--user-token", TOKEN,
                                     "--enable-legacy-api-token"], env=environment,
                                    stdout=open(work / "ls.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ls_port}"
    backend_env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(SHARED / "models"), "OPENAUTOGLM_OFFLINE": "1",
                   "LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": TOKEN, "OPENAUTOGLM_HOME": str(work / "home"),
                   "OPENAUTOGLM_ACCESS_LOG": "0",
                   **({"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(work)} if args.shared_disk else {})}
    backend = subprocess.Popen([sys.executable, "-m", "openautoglm.cli", "serve", "--host", "127.0.0.1", "--port",
                                str(port), "--workers", "2"], env=backend_env,
                               stdout=open(work / "backend.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"{url}/health", 300, label_studio, work / "ls.log")
        wait_until_up(f"http://127.0.0.1:{port}/health", 120, backend, work / "backend.log")
        return measure(LabelStudio(url), work, names, f"http://127.0.0.1:{port}", (backend.pid, label_studio.pid),
                       backend_env, not args.no_baseline)
    finally:
        for process in (backend, label_studio):
            process.terminate()
            process.wait(timeout=60)


def measure(ls: LabelStudio, work: Path, names: list[str], backend: str, pids: tuple[int, int], env: dict,
            with_baseline: bool) -> int:
    """`pids`: the backend's and Label Studio's main processes."""
    pid, ls_pid = pids
    version = requests.get(f"{backend}/health", timeout=10).json()["model_version"]
    project = ls.project("retrieve predictions", work, names)
    ls("POST", "/api/ml", json={"project": project, "url": backend, "title": "openautoglm"})
    time.sleep(3)
    idle, peak, stop = rss_mb(process_tree(pid)), [0.0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(process_tree(pid)))
            time.sleep(0.5)

    threading.Thread(target=sample, daemon=True).start()
    cpu = [cpu_seconds(process_tree(p)) for p in (pid, ls_pid)]
    started, clicked = time.perf_counter(), time.time()
    ls("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={project}",
       json={"selectedItems": {"all": True, "excluded": []}})
    answered = time.perf_counter() - started
    # the backend's /jobs until its jobs are done (cheap), then Label Studio's count: counting a
    # project's predictions costs Label Studio a query over all its tasks, which polled every few
    # seconds took CPU from the run it measures (the baseline's predict is not polled)
    while any(job["state"] in ("running", "answering")
              for job in requests.get(f"{backend}/jobs", timeout=10).json()["jobs"]):
        time.sleep(0.5)
    while ls("GET", f"/api/projects/{project}")["total_predictions_number"] < len(names):
        if time.perf_counter() - started > 3600:
            break
        time.sleep(1)
    total = time.perf_counter() - started
    cpu = [cpu_seconds(process_tree(p)) - before for p, before in zip((pid, ls_pid), cpu)]
    stop.set()
    counts, versions = ls.predictions_per_task(project)
    print(f"retrieve predictions, {len(names)} tasks: {total:.1f} s (the action answered after {answered:.1f} s); "
          f"tasks with none {counts.count(0)}, with two or more {sum(c > 1 for c in counts)}; versions {versions}; "
          f"server peak {peak[0]:.0f} MiB, {peak[0] - idle:.0f} MiB above idle ({idle:.0f})")
    jobs = requests.get(f"{backend}/jobs", timeout=10).json()["jobs"]
    print("jobs:", json.dumps([{k: j[k] for k in ("state", "total", "imported", "failed")} for j in jobs]))
    if jobs:  # the /predict's job starts as the request arrives: before it, Label Studio was listing the tasks
        print(f"the /predict arrived {min(j['started'] for j in jobs) - clicked:.1f} s after the click; CPU during "
              f"the run: backend {cpu[0]:.0f} s, Label Studio {cpu[1]:.0f} s")
    return baseline(ls, work, names, env, total, version) if with_baseline else 0


def baseline(ls: LabelStudio, work: Path, names: list[str], env: dict, total: float, version: str) -> int:
    (work / "config.xml").write_text(CONFIG)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "openautoglm.cli", "predict", str(work / "images"), "--workers", "2",
                    "--format", "label-studio", "--label-config", str(work / "config.xml"), "--image-url-root",
                    "/data/local-files/?d=images/", "-o", str(work / "tasks.json")], env=env, check=True,
                   stderr=subprocess.DEVNULL)
    predicted = time.perf_counter() - started
    project = ls.project("command line", work, names, with_tasks=False)
    started = time.perf_counter()
    with open(work / "tasks.json", "rb") as handle:
        ls("POST", f"/api/projects/{project}/import", files={"file": ("tasks.json", handle, "application/json")})
    imported = time.perf_counter() - started
    counts, versions = ls.predictions_per_task(project)
    print(f"baseline: predict --workers 2 {predicted:.1f} s + Label Studio's import {imported:.1f} s; the file's "
          f"tasks: {len(counts)}, with exactly one prediction {counts.count(1)}, versions {versions} "
          f"(server's: {version})")
    print(f"ratio retrieve predictions / baseline: {total / (predicted + imported):.2f} (goal <= 1.3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
