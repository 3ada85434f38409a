"""A project's refit on its 1,000 reviewed tasks (goal: under 1 s), in a store holding as many
reviews of another project and the project's 10,000 open predictions (the refit reads the latest
2,000 of them, where its prior stands in for reviews), and re-scoring 10,000 stored open
predictions (goal: under 10 s plus Label Studio's API time).

The store is filled as the server fills it (save_predictions, then one review per task through
`record`), 6 predicted regions per task, a third of them wrong, a missed object in every fifth
task, for two projects. Baseline in the same run: reading those reviews from the store (`reviewed_tasks`), the part
of a project's refit no fitting method can avoid. Prints the refit's median seconds over 5 rounds and its
ratio to the read. Re-scoring: 10,000 unreviewed predictions (6 regions, their Label Studio
result) re-scored by the server's QueueRescorer against a stand-in Label Studio that answers at
once (its API time is Label Studio's), pauses between requests excluded; baseline: reading the
same rows from the store.

    python benchmarks/refit_bench.py [--tasks 1000] [--open 10000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from openautoglm.converters import Box, Region, Shape
from openautoglm.model.reviews.refit import refit
from openautoglm.model.reviews.store import ReviewStore, match
from openautoglm.model.scores.calibration import Calibration
from openautoglm.model.scores.scoring import ImageEvidence

VERSION = "yolo+bench@1"


def fill(store: ReviewStore, tasks: int, project: str, first_task: int = 0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for task in range(first_task, first_task + tasks):
        regions = [Region("car", Shape.BOX, Box(i * 20, 0, i * 20 + 15, 15), score=float(rng.uniform(0.25, 1)),
                           source=VERSION) for i in range(6)]
        evidence = ImageEvidence.of_scores([r.score for r in regions], rng.uniform(0.05, 0.25, 3).tolist())
        store.save_predictions(f"{VERSION}+calibration-raw", [(task, regions, evidence, 0.5)], project=project)
        kept = [r for r in regions if rng.random() < r.score]  # what the reviewer left standing
        drawn = kept + ([Region("car", Shape.BOX, Box(500, 500, 520, 520))] if task % 5 == 0 else [])
        predicted = store.prediction(task)[1]
        store.record(task, task, f"{VERSION}+calibration-raw", match(predicted, drawn))


def fill_open(store: ReviewStore, count: int, version: str) -> None:
    rng = np.random.default_rng(1)
    rows, results = [], {}
    for task in range(count):
        regions = [Region("car", Shape.BOX, Box(i * 20, 0, i * 20 + 15, 15), score=float(rng.uniform(0.25, 1)),
                          source=VERSION) for i in range(6)]
        evidence = ImageEvidence.of_scores([r.score for r in regions], rng.uniform(0.05, 0.25, 3).tolist())
        rows.append((100_000 + task, regions, evidence, 0.5))
        results[100_000 + task] = [{"id": f"{100_000 + task}-{i}-label", "type": "rectanglelabels", "score": r.score,
                                    "value": {"x": 1, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["car"]}}
                                   for i, r in enumerate(regions)]
    store.save_predictions(version, rows, project="3.1700000000", results=results)


class _InstantLabelStudio:
    status_code, text = 201, ""

    def post(self, *args, **kwargs):
        return self


def rescore_time(folder: Path, count: int) -> tuple[float, float, int]:
    from openautoglm.backends.label_studio.client import LabelStudioClient
    from openautoglm.backends.label_studio.rescore import QueueRescorer

    store = ReviewStore(folder / "open.sqlite3")
    fill_open(store, count, f"{VERSION}+calibration-old")
    started = time.perf_counter()
    read = sum(len(store.unreviewed(VERSION, "3", f"{VERSION}+calibration-new", 200))
               for _ in range(-(-count // 200)))
    read_s = time.perf_counter() - started
    assert read == count
    calibration = Calibration(VERSION, 0.25, (0.0, 1.0), (0.0, 0.9), (0.0,) * 7, (1.0,) * 7, (0.0,) * 7, 0.0)
    calibrations = SimpleNamespace(pipeline=SimpleNamespace(version=VERSION),
                                   scoring=lambda project: (calibration, f"{VERSION}+calibration-new"))
    rescorer = QueueRescorer(LabelStudioClient("http://label-studio", "key"), store, calibrations, None, 0.05)
    rescorer.client.session, rescorer.PAUSE_S = _InstantLabelStudio(), 0.0
    started = time.perf_counter()
    done = rescorer.rescore("3")["tasks"]
    return time.perf_counter() - started, read_s, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--open", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = ReviewStore(Path(folder) / "reviews.sqlite3")
        fill(store, args.tasks, "3")
        fill(store, args.tasks, "4", first_task=args.tasks, seed=1)  # another project's reviews, not read
        fill_open(store, args.open, f"{VERSION}+calibration-raw")  # project 3's open tasks: the refit reads 2,000
        prior = Calibration(VERSION, 0.25, (0.0, 1.0), (0.0, 1.0), (0.0,) * 7, (1.0,) * 7, (0.0,) * 7, 0.0)
        reads, refits = [], []
        for _ in range(5):
            started = time.perf_counter()
            store.reviewed_tasks(VERSION, "3")
            reads.append(time.perf_counter() - started)
            started = time.perf_counter()
            calibration = refit(store, VERSION, 0.25, prior, Path(folder) / "refit.calibration.json", project="3")
            assert calibration.provenance["reviewed_tasks"] == args.tasks
            refits.append(time.perf_counter() - started)
        rescore_s, read_s, done = rescore_time(Path(folder), args.open)
    read, fitted = statistics.median(reads), statistics.median(refits)
    print(f"a project's {args.tasks} reviewed tasks: refit {fitted:.3f} s (goal < 1 s), reading them alone "
          f"{read:.3f} s; "
          f"ratio refit / read {fitted / read:.1f}")
    print(f"{done} open predictions: re-scored in {rescore_s:.2f} s plus Label Studio's API time and "
          f"{-(-done // 200) * 0.05:.1f} s of pauses (goal < 10 s), reading them alone {read_s:.2f} s; "
          f"ratio {rescore_s / read_s:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
