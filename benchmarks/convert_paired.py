"""Issue #28's speed goals, paired: COCO->YOLO against datumaro and Label Studio->COCO against
label-studio-sdk, boxes only (5,000 images, 100,000 boxes by default), in alternating rounds, each
run a fresh process (`convert_bench.run`). Single runs on this machine's disk vary 2x, so only the
ratio within a round, and its median over rounds, says anything.

    python benchmarks/convert_paired.py [--rounds 5] [--work DIR]

`--work /dev/shm/...` puts input and output on tmpfs, where the disk's swings do not decide.
Printed per round: each tool's wall time and peak RSS, the peer's time / ours; then the median
ratio and its range per direction, and whether every run wrote the same number of objects.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from convert_bench import RUNS, count_objects, label_config, make_dataset, memory_cap_mb, run

PAIRS = {"COCO->YOLO": "datumaro", "LabelStudio->COCO": "label-studio-sdk"}


def one_round(direction: str, fill: dict, work: Path, cap_mb: float) -> dict:
    measured = {}
    for tool in ("openautoglm", PAIRS[direction]):
        out = work / "out" / f"{direction.replace('->', '-to-')}-{tool}"
        shutil.rmtree(out, ignore_errors=True)
        out.with_suffix(".json").unlink(missing_ok=True)
        result = run(RUNS[direction][tool].format(out=out, **fill), timeout=600, cap_mb=cap_mb)
        if result["error"]:
            raise SystemExit(f"{direction} {tool}: {result['error']}")
        result["objects"] = count_objects(direction, out)
        measured[tool] = result
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/openautoglm-convert-paired"))
    args = parser.parse_args()

    from openautoglm.converters import convert

    shutil.rmtree(args.work, ignore_errors=True)
    source = make_dataset(args.work / "coco", args.images, args.boxes, masks=0)
    tasks = args.work / "tasks.json"
    convert(source, "coco", tasks, "label_studio")
    fill = {"src": source, "root": args.work / "coco", "ls": tasks, "config": label_config(args.work)}
    cap_mb = memory_cap_mb()
    ratios: dict[str, list[float]] = {direction: [] for direction in PAIRS}
    objects: dict[str, set] = {direction: set() for direction in PAIRS}
    print(f"{'round':<7}{'direction':<20}{'ours s':>8}{'MB':>6}{'peer s':>8}{'MB':>6}{'peer/ours':>11}")
    for number in range(1, args.rounds + 1):
        for direction, peer in PAIRS.items():
            measured = one_round(direction, fill, args.work, cap_mb)
            ours, theirs = measured["openautoglm"], measured[peer]
            ratios[direction].append(theirs["wall_s"] / ours["wall_s"])
            objects[direction] |= {ours["objects"], theirs["objects"]}
            print(f"{number:<7}{direction:<20}{ours['wall_s']:>8.2f}{ours['peak_rss_mb']:>6.0f}"
                  f"{theirs['wall_s']:>8.2f}{theirs['peak_rss_mb']:>6.0f}{ratios[direction][-1]:>10.2f}x", flush=True)
    print()
    for direction, peer in PAIRS.items():
        values = ratios[direction]
        print(f"{direction}: {peer} / openautoglm median {statistics.median(values):.2f}x "
              f"(range {min(values):.2f}-{max(values):.2f}, {len(values)} rounds); "
              f"objects written by every run: {sorted(objects[direction])}")


if __name__ == "__main__":
    main()
