"""The mask-heavy conversions with every core against one process (the baseline, same run): a
synthetic mask-heavy COCO set (default 2,000 images of 640x480 with 5 RLE masks and 1 box each),
converted COCO->Label Studio (brush), Label Studio->COCO, COCO->VOC (instance PNGs) and
COCO->YOLO (segment outlines), each conversion a fresh `openautoglm convert`, the two sides
alternating for `--rounds` rounds (this machine's disk makes single runs vary by up to 2x).
Prints per direction the median wall time of each side and their ratio (goal: at least 1.7 with
2 processes on a 2-core machine); the outputs of both sides must be byte-identical.

    python benchmarks/convert_processes.py [--images 2000 --masks 10000 --rounds 3]
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_bench import make_dataset  # noqa: E402

DIRECTIONS = [("coco", "label_studio"), ("label_studio", "coco"), ("coco", "voc"), ("coco", "yolo")]


def convert(source: Path, source_format: str, target: Path, target_format: str, workers: int) -> float:
    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    command = [sys.executable, "-m", "openautoglm.cli", "convert", str(source), "--from", source_format, "--to",
               target_format, str(target), "--workers", str(workers)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
    return time.perf_counter() - started


def same(first: Path, second: Path) -> bool:
    if first.is_file():
        return filecmp.cmp(first, second, shallow=False)
    comparison = filecmp.dircmp(first, second)
    names = [p.relative_to(first) for p in first.rglob("*") if p.is_file()]
    return not comparison.left_only and not comparison.right_only and all(
        filecmp.cmp(first / n, second / n, shallow=False) for n in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--masks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sources = {"coco": make_dataset(root / "coco", args.images, args.images, args.masks)}
        sources["label_studio"] = root / "tasks.json"
        convert(sources["coco"], "coco", sources["label_studio"], "label_studio", args.workers)
        print(f"{args.images} images, {args.masks} masks; {args.workers} processes against 1, "
              f"median of {args.rounds} alternating rounds")
        for source_format, target_format in DIRECTIONS:
            times: dict[int, list[float]] = {1: [], args.workers: []}
            suffix = ".json" if target_format in ("coco", "label_studio") else ""
            outputs = {w: root / f"out-{target_format}-{w}{suffix}" for w in times}
            for _ in range(args.rounds):
                for workers in times:
                    times[workers].append(convert(sources[source_format], source_format, outputs[workers],
                                                  target_format, workers))
            one, many = statistics.median(times[1]), statistics.median(times[args.workers])
            print(f"{source_format} -> {target_format}: 1 process {one:.2f} s, {args.workers} processes "
                  f"{many:.2f} s, ratio {one / many:.2f}x (rounds: {[round(t, 1) for t in times[1]]} / "
                  f"{[round(t, 1) for t in times[args.workers]]}); identical output: "
                  f"{same(outputs[1], outputs[args.workers])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
