"""Refit time on a review store of 1,000 reviewed tasks (the review loop's goal: under 2 s).

The store is filled as the server fills it (save_predictions, then one review per task through
`record`), 6 predicted regions per task, a third of them wrong, a missed object in every fifth
task. Baseline in the same run: reading those reviews from the store (`reviewed_tasks`), the part
of a refit no fitting method can avoid. Prints the refit's median seconds over 5 rounds and its
ratio to the read.

    python benchmarks/refit_bench.py [--tasks 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from openautoglm.converters import Box, Region, Shape
from openautoglm.model.calibration import Calibration
from openautoglm.model.refit import refit
from openautoglm.model.review_store import ReviewStore, match

VERSION = "yolo+bench@1"


def fill(store: ReviewStore, tasks: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for task in range(tasks):
        regions = [Region("car", Shape.BOX, Box(i * 20, 0, i * 20 + 15, 15), score=float(rng.uniform(0.25, 1)),
                           source=VERSION) for i in range(6)]
        store.save_predictions(f"{VERSION}+calibration-raw", [(task, regions, rng.uniform(0.05, 0.25, 3).tolist(), 0.5)])
        kept = [r for r in regions if rng.random() < r.score]  # what the reviewer left standing
        drawn = kept + ([Region("car", Shape.BOX, Box(500, 500, 520, 520))] if task % 5 == 0 else [])
        predicted = store.prediction(task)[1]
        store.record(task, task, f"{VERSION}+calibration-raw", match(predicted, drawn))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = ReviewStore(Path(folder) / "reviews.sqlite3")
        fill(store, args.tasks)
        prior = Calibration(VERSION, 0.25, (0.0, 1.0), (0.0, 1.0), (0.0,) * 7, (1.0,) * 7, (0.0,) * 7, 0.0)
        reads, refits = [], []
        for _ in range(5):
            started = time.perf_counter()
            store.reviewed_tasks(VERSION)
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            refit(store, VERSION, 0.25, prior, Path(folder) / "refit.calibration.json")
            refits.append(time.perf_counter() - started)
    read, fitted = statistics.median(reads), statistics.median(refits)
    print(f"{args.tasks} reviewed tasks: refit {fitted:.3f} s (goal < 2 s), reading the reviews alone {read:.3f} s; "
          f"ratio refit / read {fitted / read:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
