"""The Ray engine against the local engine (the baseline, same run) on 512 images (coco128-train
four times), `yolo` pipeline: wall time of the predictions with Ray's own start (ray.init)
excluded and reported on its own; goal: at most 1.3x the local engine's time. Entries must be
identical.

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/ray_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco128-train" / "images"


def main() -> int:
    import ray

    from openautoglm.autolabel import AutoLabeler, LabelerArguments
    from openautoglm.cli import ray_engine
    from openautoglm.cli.predict import Journal

    paths = sorted(IMAGES.glob("*.jpg")) * 4
    arguments = LabelerArguments("yolo", (), "cpu", 8)
    started = time.perf_counter()
    labeler = AutoLabeler(*arguments)
    local = [Journal.entry(*result) for result in labeler.stream(paths)]
    local_s = time.perf_counter() - started
    started = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False)
    ray_start_s = time.perf_counter() - started
    started = time.perf_counter()
    remote = list(ray_engine.entries(arguments, paths))
    ray_s = time.perf_counter() - started
    ray.shutdown()
    print(f"{len(paths)} images: local engine {local_s:.1f} s (model load included), Ray engine {ray_s:.1f} s "
          f"(actors' model loads included; ray.init {ray_start_s:.1f} s excluded); ratio Ray / local "
          f"{ray_s / local_s:.2f} (goal <= 1.3); identical entries: {local == remote}")
    return 0 if local == remote else 1


if __name__ == "__main__":
    sys.exit(main())
