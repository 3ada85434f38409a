"""What one import request costs Label Studio, by its size: the reason a prelabelling job's pages
are large (`PredictRequests.job_page_tasks`). A real Label Studio 1.23.2 (from the live tests'
`.cache`), a project of --tasks tasks, and --predictions predictions imported through
`/api/projects/{id}/import/predictions` in pages of 64 and of 512 (each into its own project of
the same size). Printed per page size: the total, the number of requests, the first, median and
last request's seconds; then the ratio of the two totals (pages of 64 / pages of 512).

    python benchmarks/ls_import_pages.py [--tasks 10000 --predictions 2048]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from prelabel_project import LS, TOKEN, LabelStudio  # beside this script
from processes import free_port, wait_until_up
from serve_bench import CONFIG

RESULT = [{"from_name": "label", "to_name": "image", "type": "rectanglelabels", "original_width": 640,
           "original_height": 480, "score": 0.9,
           "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0, "rectanglelabels": ["car"]}}]


def task_ids(ls: LabelStudio, project: int) -> list[int]:
    ids, page = [], 1
    while True:
        answer = requests.get(f"{ls.url}/api/tasks", headers=ls.headers, timeout=600,
                              params={"project": project, "page": page, "page_size": 1000, "fields": "task_only"})
        if answer.status_code == 404:
            return sorted(ids)
        tasks = answer.json()["tasks"]
        ids += [task["id"] for task in tasks]
        if len(tasks) < 1000:
            return sorted(ids)
        page += 1


def imported_in_pages(ls: LabelStudio, tasks: int, predictions: int, page: int) -> tuple[float, list[float]]:
    project = ls("POST", "/api/projects", json={"title": f"pages of {page}", "label_config": CONFIG})["id"]
    ls("POST", f"/api/projects/{project}/import", json=[{"data": {"image": f"/data/{n}.jpg"}} for n in range(tasks)])
    ids = task_ids(ls, project)[:predictions]
    seconds = []
    for start in range(0, len(ids), page):
        started = time.perf_counter()
        ls("POST", f"/api/projects/{project}/import/predictions",
           json=[{"task": i, "result": RESULT, "score": 0.5, "model_version": "v1"} for i in ids[start:start + page]])
        seconds.append(time.perf_counter() - started)
    return sum(seconds), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--predictions", type=int, default=2048)
    args = parser.parse_args()
    if not LS.exists():
        raise SystemExit(f"{LS} is missing: run the live tests once (make test) to install Label Studio")
    work = Path(tempfile.mkdtemp(prefix="openautoglm-ls-import-"))
    port = free_port()
    label_studio = subprocess.Popen(
        [str(LS), "start", "--no-browser", "--port", str(port), "--internal-host", "127.0.0.1", "--data-dir",
         str(work / "data"), "--username", "b@example.com", "--password", "openautoglm-pass", "--user-token", TOKEN,
         "--enable-legacy-api-token"], env={**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(work / "base")},
        stdout=open(work / "ls.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/health", 300, label_studio, work / "ls.log")
        ls = LabelStudio(f"http://127.0.0.1:{port}")
        totals = {}
        for page in (64, 512):
            totals[page], seconds = imported_in_pages(ls, args.tasks, args.predictions, page)
            print(f"{args.predictions} predictions into a project of {args.tasks} tasks, pages of {page}: "
                  f"{totals[page]:.1f} s in {len(seconds)} requests (first {seconds[0]:.2f} s, median "
                  f"{sorted(seconds)[len(seconds) // 2]:.2f} s, last {seconds[-1]:.2f} s)", flush=True)
        print(f"pages of 64 / pages of 512: {totals[64] / totals[512]:.1f}x the time")
    finally:
        label_studio.terminate()
        label_studio.wait(timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
