"""`openautoglm predict --workers 2` against one process (the baseline, same run), on coco128-train
with the default `yolo` pipeline: wall time of the whole command (interpreter start, model loads and
the final write included), alternating the two sides for `--rounds` rounds; prints images/s of
each and the ratio of the medians (goal: at least 1.7 on a 2-core machine). Outputs must be
byte-identical.

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/predict_workers.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco128-train" / "images"


def timed(workers: int, output: Path) -> float:
    command = [sys.executable, "-m", "openautoglm.cli", "predict", str(IMAGES), "-o", str(output), "--force",
               "--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    count = len([p for p in IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")])
    times: dict[int, list[float]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory() as folder:
        outputs = {w: Path(folder) / f"workers-{w}.json" for w in times}
        for round_ in range(args.rounds):
            for workers in (times if round_ % 2 == 0 else reversed(list(times))):
                times[workers].append(timed(workers, outputs[workers]))
        identical = filecmp.cmp(outputs[1], outputs[args.workers], shallow=False)
    one, many = statistics.median(times[1]), statistics.median(times[args.workers])
    print(f"{count} images; 1 process: {count / one:.2f} images/s (median {one:.2f} s of {times[1]}); "
          f"{args.workers} workers: {count / many:.2f} images/s (median {many:.2f} s of {times[args.workers]}); "
          f"ratio {one / many:.2f}; outputs identical: {identical}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
