"""Images/s of each real detector called bare and through its openautoglm proposer, batch 1 and 8.

Bare: ultralytics' own `YOLO.predict` on the same PIL images; for YOLOX (no library of its own)
the proposer's `raw` step, i.e. letterbox + onnxruntime + grid decode + NMS. Through the proposer
adds label mapping and canonical Regions. Overhead = proposer time / bare time - 1 (goal <= 5 %).

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/model_bench.py [--images 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from openautoglm.converters.files import load_displayed
from openautoglm.model.registry import find_local
from openautoglm.model.ultralytics_yolo import UltralyticsProposer
from openautoglm.model.yolox import YoloxProposer

COCO128 = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco128-train" / "images"


def timed(call, batches, repeats: int) -> float:
    """Best of `repeats` passes over all batches, in images per second."""
    call(batches[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            call(batch)
        best = min(best, time.perf_counter() - started)
    return sum(len(b) for b in batches) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=COCO128)
    args = parser.parse_args()
    images = [load_displayed(p) for p in sorted(args.folder.glob("*.jpg"))[:args.images]]
    proposers = {
        "yolov8n (tflite int8)": UltralyticsProposer("yolov8n", str(find_local("yolov8n"))),
        "yolox-nano (onnx)": YoloxProposer("yolox-nano", str(find_local("yolox-nano"))),
    }
    print(f"{len(images)} images from {args.folder}, best of {args.repeats}")
    print(f"{'model':<24}{'batch':>6}{'bare img/s':>12}{'proposer img/s':>16}{'overhead':>10}")
    for name, proposer in proposers.items():
        if isinstance(proposer, YoloxProposer):
            bare = lambda batch: [proposer.raw(image) for image in batch]  # noqa: E731
        else:
            bare = proposer.raw
        for batch_size in (1, 8):
            batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
            # interleave the two so drift in machine speed hits both alike
            bare_rate = proposed_rate = 0.0
            for _ in range(2):
                bare_rate = max(bare_rate, timed(bare, batches, args.repeats))
                proposed_rate = max(proposed_rate, timed(lambda b: proposer.propose(b, []), batches, args.repeats))
            overhead = bare_rate / proposed_rate - 1
            print(f"{name:<24}{batch_size:>6}{bare_rate:>12.1f}{proposed_rate:>16.1f}{overhead:>9.1%}")


if __name__ == "__main__":
    main()
