"""Images/s of each real detector called bare and through its openautoglm proposer, batch 1 and 8.

Bare: ultralytics' own `YOLO.predict` on the same PIL images; for YOLOX (no library of its own)
the proposer's `raw` step, i.e. letterbox + onnxruntime + grid decode + NMS. Through the proposer
adds label mapping and canonical Regions. Overhead = proposer time / bare time - 1 (goal <= 5 %).

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/model_bench.py [--images 32] [--rounds 7]
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


def paired_rates(bare, proposed, batches, rounds: int) -> tuple[float, float, float]:
    """Images/s of each, and the median over rounds of the paired time ratio (proposer / bare).

    The two are timed back to back in every round, so a slow moment of the machine hits both;
    the median of the paired ratios is far steadier than a ratio of two separate bests."""
    count = sum(len(b) for b in batches)
    bare(batches[0]), proposed(batches[0])  # warm-up
    bare_times, proposed_times = [], []
    for _ in range(rounds):
        for call, times in ((bare, bare_times), (proposed, proposed_times)):
            started = time.perf_counter()
            for batch in batches:
                call(batch)
            times.append(time.perf_counter() - started)
    ratios = sorted(p / b for p, b in zip(proposed_times, bare_times))
    return count / min(bare_times), count / min(proposed_times), ratios[len(ratios) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--folder", type=Path, default=COCO128)
    args = parser.parse_args()
    images = [load_displayed(p) for p in sorted(args.folder.glob("*.jpg"))[:args.images]]
    proposers = {
        "yolov8n (tflite int8)": UltralyticsProposer("yolov8n", str(find_local("yolov8n"))),
        "yolox-nano (onnx)": YoloxProposer("yolox-nano", str(find_local("yolox-nano"))),
    }
    print(f"{len(images)} images from {args.folder}; img/s: best of {args.rounds} rounds; "
          "overhead: median of the paired per-round ratios")
    print(f"{'model':<24}{'batch':>6}{'bare img/s':>12}{'proposer img/s':>16}{'overhead':>10}")
    for name, proposer in proposers.items():
        if isinstance(proposer, YoloxProposer):
            bare = lambda batch: [proposer.raw(image) for image in batch]  # noqa: E731
        else:
            bare = proposer.raw
        for batch_size in (1, 8):
            batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
            bare_rate, proposed_rate, ratio = paired_rates(bare, lambda b: proposer.propose(b, []), batches,
                                                           args.rounds)
            overhead = ratio - 1
            print(f"{name:<24}{batch_size:>6}{bare_rate:>12.1f}{proposed_rate:>16.1f}{overhead:>9.1%}")


if __name__ == "__main__":
    main()
