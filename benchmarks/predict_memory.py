"""Peak memory of `openautoglm predict` against the number of images: a run over `--large` images
(coco128-train's repeated under distinct names) against the baseline, a run over `--small`, same
pipeline, same output format, same session. Prints each run's peak RSS (the whole process tree,
workers included, as the kernel counts it for waited-for children) and the ratio large / small
(goal: at most 1.10 for 10,000 against 500 images).

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/predict_memory.py [--large 10000] [--model yolox]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "coco128-train" / "images"

# run in a fresh interpreter: RUSAGE_CHILDREN is the largest child that process ever waited for
MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
           "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def folder_of(count: int, root: Path) -> Path:
    """`count` images named 00000.jpg...: coco128's, repeated, as symbolic links."""
    sources = sorted(p for p in IMAGES.iterdir() if p.suffix.lower() == ".jpg")
    folder = root / f"images-{count}"
    folder.mkdir()
    for index in range(count):
        (folder / f"{index:05d}.jpg").symlink_to(sources[index % len(sources)])
    return folder


def peak_rss_mib(folder: Path, output: Path, model: str, output_format: str) -> tuple[float, float]:
    command = [sys.executable, "-m", "openautoglm.cli", "predict", str(folder), "-o", str(output), "--model", model,
               "--format", output_format, "--force"]
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True,
                            env=os.environ)
    return int(result.stdout.strip()) / 1024, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=500)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--model", default="yolox", help="pipeline (yolox: the fastest with real weights here)")
    parser.add_argument("--format", default="coco")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        results = {}
        for count in (args.small, args.large):
            folder = folder_of(count, Path(root))
            suffix = ".json" if args.format in ("coco", "label_studio") else ".xml" if args.format == "cvat" else ""
            results[count] = peak_rss_mib(folder, Path(root) / f"out-{count}{suffix}", args.model, args.format)
            print(f"{count} images: peak RSS {results[count][0]:.0f} MiB, {results[count][1]:.0f} s", flush=True)
    ratio = results[args.large][0] / results[args.small][0]
    print(f"peak RSS {args.large} / {args.small} images ({args.model}, {args.format}): {ratio:.3f} (goal <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
