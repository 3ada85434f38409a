"""A server worker's memory around a refit: a process that has loaded the `yolo` pipeline (as a
worker has) refits from a review store of 1,000 reviewed tasks three times, as the server does
(`Refitter._refit_apart`: the refit in a child process), against the baseline of the same refits
run in the process itself, as before. Each side in a fresh process; prints the RSS after the
refits over the RSS before (goal: within 1.10).

    python benchmarks/refit_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"

SIDE = """
import json, sys
from pathlib import Path
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.reviews.refit import refit
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.backends.label_studio.refitter import refit_into
from processes import rss_mb

def rss():
    import os
    return rss_mb([os.getpid()])

pipeline = Pipeline.load("yolo")
store_path, out, mode = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
before = rss()
for round_ in range(3):
    if mode == "in-process":
        refit(ReviewStore(store_path), "yolo+bench@1", 0.25, pipeline.calibration, out, {})
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            prior = pipeline.calibration
            child.submit(refit_into, store_path, "yolo+bench@1", 0.25, prior, str(out), {}, None).result()
print(json.dumps({"before": before, "after": rss()}))
"""


def side(store: Path, mode: str, work: Path) -> dict:
    env = {**os.environ, "OPENAUTOGLM_MODEL_DIR": str(SHARED / "models"), "OPENAUTOGLM_OFFLINE": "1",
           "PYTHONPATH": str(Path(__file__).parent)}
    answer = subprocess.run([sys.executable, "-c", SIDE, str(store), str(work / f"{mode}.json"), mode], env=env,
                            capture_output=True, text=True, check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> int:
    from refit_bench import fill  # beside this script

    from openautoglm.model.reviews.store import ReviewStore

    work = Path(tempfile.mkdtemp(prefix="openautoglm-refit-memory-"))
    fill(ReviewStore(work / "reviews.sqlite3"), 1000)
    for mode in ("in-process", "child process"):
        figures = side(work / "reviews.sqlite3", mode.split()[0] if mode != "in-process" else mode, work)
        print(f"{mode}{' (baseline)' if mode == 'in-process' else ''}: RSS {figures['before']:.0f} MiB before "
              f"3 refits, {figures['after']:.0f} MiB after: {figures['after'] / figures['before']:.3f}"
              f"{' (goal <= 1.10)' if mode != 'in-process' else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
