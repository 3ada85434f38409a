"""Images/s of each real detector called bare and through its openautoglm proposer, batch 1 and 8,
and the resident memory of a fresh process that has loaded it.

Bare: ultralytics' own `YOLO.predict` on the same PIL images, for both YOLOv8n paths (the LiteRT
proposer that pipelines use is measured against the library it replaces); for YOLOX (no library of
its own) the proposer's `raw` step, i.e. letterbox + onnxruntime + grid decode + NMS. Through the
proposer adds label mapping and canonical Regions. Overhead = proposer time / bare time - 1 (goal
<= 5 %; negative: faster than the bare library call).

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/model_bench.py [--images 32] [--rounds 7]
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import time
from pathlib import Path

from openautoglm.converters.files import load_displayed
from openautoglm.model.inference.litert_yolo import LiteRtYoloProposer
from openautoglm.model.inference.registry import find_local
from openautoglm.model.inference.settings import ModelSettings
from openautoglm.model.inference.ultralytics_yolo import UltralyticsProposer
from openautoglm.model.inference.yolox import YoloxProposer

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
    directory = ModelSettings.from_env().model_dir
    yolov8n, yolox = str(find_local("yolov8n", directory)), str(find_local("yolox-nano", directory))
    ultralytics = UltralyticsProposer("yolov8n", yolov8n)
    yolox_proposer = YoloxProposer("yolox-nano", yolox)
    rows = {  # name: (bare call, proposer, how a fresh process loads it)
        "yolov8n ultralytics": (ultralytics.raw, ultralytics, f"UltralyticsProposer('yolov8n', {yolov8n!r})"),
        "yolov8n LiteRT": (ultralytics.raw, LiteRtYoloProposer("yolov8n", yolov8n),
                           f"LiteRtYoloProposer('yolov8n', {yolov8n!r})"),
        "yolox-nano onnx": (lambda batch: [yolox_proposer.raw(image) for image in batch], yolox_proposer,
                            f"YoloxProposer('yolox-nano', {yolox!r})"),
    }
    print(f"{len(images)} images from {args.folder}; img/s: best of {args.rounds} rounds; "
          "overhead: median of the paired per-round ratios; RSS: a fresh process after loading")
    print(f"{'model':<22}{'batch':>6}{'bare img/s':>12}{'proposer img/s':>16}{'overhead':>10}{'RSS MB':>8}")
    for name, (bare, proposer, load) in rows.items():
        rss = loaded_rss_mb(load)
        for batch_size in (1, 8):
            batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)]
            proposed = functools.partial(proposer.propose, labels=[])
            bare_rate, proposed_rate, ratio = paired_rates(bare, proposed, batches, args.rounds)
            overhead = ratio - 1
            print(f"{name:<22}{batch_size:>6}{bare_rate:>12.1f}{proposed_rate:>16.1f}{overhead:>9.1%}{rss:>8.0f}")


def loaded_rss_mb(load: str) -> float:
    """Peak resident memory of a new interpreter that imports the proposer and loads the weights."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (this process)
    script = ("from pathlib import Path; from openautoglm.model.inference.litert_yolo import LiteRtYoloProposer; "
              "from openautoglm.model.inference.ultralytics_yolo import UltralyticsProposer; "
              f"from openautoglm.model.inference.yolox import YoloxProposer; {load}; "
              "print(next(int(line.split()[1]) for line in Path('/proc/self/status').read_text().splitlines() "
              "if line.startswith('VmHWM')) / 1024)")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(run.stdout.split()[-1])


if __name__ == "__main__":
    main()
