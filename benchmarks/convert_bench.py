"""Conversion speed and memory: openautoglm against datumaro, supervision and label-studio-sdk.

A synthetic COCO set (default 5,000 images, 100,000 boxes, 5,000 RLE masks, category ids with
gaps) is converted COCO->YOLO, COCO->VOC, COCO->Label Studio and Label Studio->COCO by every tool
that has the direction, each run in its own process. Printed per run: wall time, peak RSS and
the number of objects written; per direction: the fastest peer's time / ours (higher is better for
us) and our peak RSS / that peer's. Then Label Studio brush RLE encoding of 1024x1024 masks:
label-studio-sdk's `mask2rle` / ours, with the outputs compared byte for byte.

    python benchmarks/convert_bench.py [--images 5000 --boxes 100000 --masks 5000] [--work DIR]

Every run is stopped (and counted as failed, saying why) past --timeout or past --memory-cap of
RSS, 40 % of the machine's memory by default: supervision reached 24 GB on the default set.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

WIDTH, HEIGHT = 640, 480
CATEGORY_IDS = [i for i in range(1, 91) if i not in {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}]  # COCO's gaps

# Each tool's conversion as a script run in a fresh interpreter; {src}, {out}, {images} are filled in.
RUNS = {
    "COCO->YOLO": {
        "openautoglm": "from openautoglm.converters import convert; convert('{src}', 'coco', '{out}', 'yolo')",
        "datumaro": "import datumaro as dm; dm.Dataset.import_from('{root}', 'coco_instances')"
                    ".export('{out}', 'yolo', save_media=False)",
        "supervision": "import supervision as sv; sv.DetectionDataset.from_coco('{images}', '{src}')"
                       ".as_yolo(annotations_directory_path='{out}')",
    },
    "COCO->VOC": {
        "openautoglm": "from openautoglm.converters import convert; convert('{src}', 'coco', '{out}', 'voc')",
        "datumaro": "import datumaro as dm; dm.Dataset.import_from('{root}', 'coco_instances')"
                    ".export('{out}', 'voc', save_media=False)",
        "supervision": "import supervision as sv; sv.DetectionDataset.from_coco('{images}', '{src}')"
                       ".as_pascal_voc(annotations_directory_path='{out}')",
    },
    "COCO->LabelStudio": {
        "openautoglm": "from openautoglm.converters import convert; convert('{src}', 'coco', '{out}.json', "
                       "'label_studio')",
        "label-studio-sdk": "from label_studio_sdk.converter.imports.coco import convert_coco_to_ls; "
                            "convert_coco_to_ls('{src}', '{out}.json')",
        # the SDK crashes on RLE; timed again on the same set without the RLE objects for a ratio
        "label-studio-sdk (boxes only)": "from label_studio_sdk.converter.imports.coco import convert_coco_to_ls; "
                                         "convert_coco_to_ls('{boxes_only}', '{out}.json')",
    },
    "LabelStudio->COCO": {
        "openautoglm": "from openautoglm.converters import convert; convert('{ls}', 'label_studio', '{out}.json', "
                       "'coco')",
        "label-studio-sdk": "from label_studio_sdk.converter import Converter; "
                            "Converter(config=open('{config}').read(), project_dir=None, download_resources=False)"
                            ".convert_to_coco('{ls}', '{out}', is_dir=False)",
    },
}


def make_dataset(root: Path, images: int, boxes: int, masks: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    annotation_id = 1
    annotations = []
    image_ids = np.arange(1, images + 1) * 3  # image ids with gaps too
    for index in range(boxes):
        x, y = rng.uniform(0, WIDTH - 20), rng.uniform(0, HEIGHT - 20)
        w, h = rng.uniform(4, min(200, WIDTH - x)), rng.uniform(4, min(200, HEIGHT - y))
        annotations.append({"id": annotation_id, "image_id": int(image_ids[index % images]),
                            "category_id": int(rng.choice(CATEGORY_IDS)),
                            "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                            "area": round(w * h, 2), "iscrowd": 0, "segmentation": []})
        annotation_id += 1
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    for index in range(masks):
        cx, cy = rng.uniform(60, WIDTH - 60), rng.uniform(60, HEIGHT - 60)
        rx, ry = rng.uniform(10, 60), rng.uniform(10, 60)
        bitmap = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        rle = coco_mask.encode(np.asfortranarray(bitmap.astype(np.uint8)))
        x, y, w, h = coco_mask.toBbox(rle).tolist()
        annotations.append({"id": annotation_id, "image_id": int(image_ids[index % images]),
                            "category_id": int(rng.choice(CATEGORY_IDS)), "bbox": [x, y, w, h],
                            "area": int(coco_mask.area(rle)), "iscrowd": 1,
                            "segmentation": {"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode()}})
        annotation_id += 1
    doc = {
        "info": {"description": "openautoglm synthetic benchmark set"}, "licenses": [],
        "categories": [{"id": i, "name": f"class_{i}", "supercategory": "thing"} for i in CATEGORY_IDS],
        "images": [{"id": int(i), "file_name": f"{i:012d}.jpg", "width": WIDTH, "height": HEIGHT} for i in image_ids],
        "annotations": annotations,
    }
    # datumaro's layout: annotations/instances_<subset>.json and images/<subset>/
    (root / "annotations").mkdir(parents=True)
    images_dir = root / "images" / "default"
    images_dir.mkdir(parents=True)
    source = root / "annotations" / "instances_default.json"
    source.write_text(json.dumps(doc))
    blank = images_dir / "blank.jpg"
    Image.new("RGB", (WIDTH, HEIGHT), "gray").save(blank)
    for image in doc["images"]:  # supervision reads every image for its size
        os.link(blank, images_dir / image["file_name"])
    blank.unlink()
    return source


def label_config(root: Path) -> Path:
    labels = "".join(f'<Label value="class_{i}"/>' for i in CATEGORY_IDS)
    config = root / "label_config.xml"
    config.write_text(f'<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">{labels}'
                      f'</RectangleLabels><BrushLabels name="brush" toName="image">{labels}</BrushLabels></View>')
    return config


# The child reports its own peak RSS (VmHWM belongs to the memory map made at exec). getrusage's
# ru_maxrss would not do: Linux carries it across fork+exec, so it reports at least this process.
_REPORT_PEAK = "\nimport re; print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))"


def memory_cap_mb(fraction: float = 0.4) -> float:
    """The RSS a run may reach before it is stopped: a share of this machine's memory, so that a peer
    that grows without bound (supervision reached 24 GB on 100,000 boxes) cannot take the machine."""
    total_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return fraction * total_kb / 1024


def _rss_mb(pid: int) -> float:
    try:
        found = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    except OSError:  # it has just exited
        return 0.0
    return int(found.group(1)) / 1024 if found else 0.0


def run(script: str, timeout: float, cap_mb: float) -> dict:
    """One tool's run in a fresh interpreter, stopped past `timeout` seconds or `cap_mb` of RSS."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", script + _REPORT_PEAK], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    stopped = None
    while child.poll() is None and stopped is None:
        time.sleep(0.01)  # a coarser poll would round every wall time up to its step
        if _rss_mb(child.pid) > cap_mb:
            stopped = f"stopped at {cap_mb / 1024:.1f} GB of RSS (--memory-cap)"
        elif time.perf_counter() - started > timeout:
            stopped = f"timeout after {timeout:.0f} s"
    if stopped:
        child.kill()
        child.communicate()
        return {"wall_s": time.perf_counter() - started, "peak_rss_mb": None, "error": stopped}
    stdout, stderr = child.communicate()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        reason = (stderr.strip().splitlines() or [f"killed by signal {-child.returncode} (out of memory?)"])[-1]
        return {"wall_s": wall, "peak_rss_mb": None, "error": reason[:160]}
    return {"wall_s": wall, "peak_rss_mb": int(stdout.split()[-1]) / 1024, "error": None}


def count_objects(direction: str, out: Path) -> int | None:
    """What each tool actually wrote: a tool may 'succeed' while dropping objects."""
    if direction == "COCO->YOLO":
        lists = {"train.txt", "valid.txt", "val.txt", "test.txt", "classes.txt"}
        return sum(len(p.read_text().splitlines()) for p in out.rglob("*.txt") if p.name not in lists)
    if direction == "COCO->VOC":
        return sum(p.read_text().count("<object>") for p in out.rglob("*.xml"))
    path = out.with_suffix(".json") if out.with_suffix(".json").is_file() else out / "result.json"
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    if isinstance(doc, list):
        return sum(len(a["result"]) for task in doc for group in ("annotations",
                                                                  "predictions") for a in task.get(group, []))
    return len(doc.get("annotations", []))


def brush_benchmark(count: int = 20) -> dict:
    from label_studio_sdk.converter.brush import mask2rle

    from openautoglm.converters import brush_rle

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:1024, 0:1024]
    masks = []
    for _ in range(count):
        bitmap = np.zeros((1024, 1024), dtype=bool)
        for _ in range(3):
            cx, cy, rx, ry = rng.uniform(100, 900, 2).tolist() + rng.uniform(20, 200, 2).tolist()
            bitmap |= ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        masks.append(bitmap)
    started = time.perf_counter()
    ours = [brush_rle.encode(m) for m in masks]
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = [mask2rle(m.astype(np.uint8) * 255) for m in masks]
    theirs_s = time.perf_counter() - started
    return {"masks": count, "openautoglm_s": ours_s, "label_studio_sdk_s": theirs_s,
            "ratio": theirs_s / ours_s, "byte_identical": ours == theirs}


ONE_PROCESS = "openautoglm, 1 process"
for _tools in RUNS.values():  # the baseline of the process pool: the same conversion in one process
    _tools[ONE_PROCESS] = "import os; os.environ['OPENAUTOGLM_CONVERT_WORKERS'] = '1'; " + _tools["openautoglm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--boxes", type=int, default=100_000)
    parser.add_argument("--masks", type=int, default=5000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/openautoglm-convert-bench"))
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run counts as failed")
    parser.add_argument("--memory-cap", type=float, default=memory_cap_mb(),
                        help="MB of RSS at which a run is stopped and counted as failed (default: 40 %% of memory)")
    args = parser.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    root = args.work / "coco"
    print(f"generating {args.images} images, {args.boxes} boxes, {args.masks} RLE masks in {root}", flush=True)
    source = make_dataset(root, args.images, args.boxes, args.masks)
    config = label_config(args.work)
    ls_source = args.work / "tasks.json"  # Label Studio input for the reverse direction, made by us
    from openautoglm.converters import convert

    convert(source, "coco", ls_source, "label_studio")
    boxes_only = args.work / "boxes_only.json"
    doc = json.loads(source.read_text())
    doc["annotations"] = [a for a in doc["annotations"] if not isinstance(a["segmentation"], dict)]
    boxes_only.write_text(json.dumps(doc))
    fill = {"src": source, "root": root, "images": root / "images" / "default", "ls": ls_source, "config": config,
            "boxes_only": boxes_only}

    results = []
    print(f"\n{'direction':<20}{'tool':<30}{'wall s':>9}{'peak MB':>10}{'objects':>9}  note")
    for direction, tools in RUNS.items():
        for tool, template in tools.items():
            out = args.work / "out" / f"{direction.replace('->', '-to-')}-{tool}"
            out.parent.mkdir(parents=True, exist_ok=True)
            measured = run(template.format(out=out, **fill), args.timeout, args.memory_cap)
            measured.update(direction=direction, tool=tool, objects=count_objects(direction, out))
            results.append(measured)
            peak = f"{measured['peak_rss_mb']:.0f}" if measured["peak_rss_mb"] else "-"
            print(f"{direction:<20}{tool:<30}{measured['wall_s']:>9.2f}{peak:>10}"
                  f"{measured['objects'] if measured['objects'] is not None else '-':>9}  {measured['error'] or ''}",
                  flush=True)

    header = f"{'direction':<20}{'fastest peer':<18}{'speed ratio':>12}{'memory ratio':>14}"
    print(f"\n{header}   (peer / ours; ours / peer)")
    summary = []
    for direction in RUNS:
        ours = next(r for r in results if r["direction"] == direction and r["tool"] == "openautoglm")
        peers = [r for r in results if r["direction"] == direction and not r["tool"].startswith("openautoglm")
                 and not r["error"]]
        if not peers:
            print(f"{direction:<20}{'(no peer finished)':<18}")
            continue
        best = min(peers, key=lambda r: r["wall_s"])
        speed, memory = best["wall_s"] / ours["wall_s"], ours["peak_rss_mb"] / best["peak_rss_mb"]
        summary.append({"direction": direction, "peer": best["tool"], "speed_ratio": speed, "memory_ratio": memory})
        print(f"{direction:<20}{best['tool']:<18}{speed:>11.1f}x{memory:>13.2f}x")

    print(f"\n{'direction':<20}{'1 process s':>12}{'all cores s':>12}{'ratio':>8}   (one process / the pool)")
    for direction in RUNS:
        ours = next(r for r in results if r["direction"] == direction and r["tool"] == "openautoglm")
        one = next(r for r in results if r["direction"] == direction and r["tool"] == ONE_PROCESS)
        print(f"{direction:<20}{one['wall_s']:>12.2f}{ours['wall_s']:>12.2f}{one['wall_s'] / ours['wall_s']:>7.2f}x")
        summary.append({"direction": direction, "processes_ratio": one["wall_s"] / ours["wall_s"]})

    brush = brush_benchmark()
    print(textwrap.dedent(f"""
        brush RLE, {brush['masks']} masks of 1024x1024: label-studio-sdk {brush['label_studio_sdk_s']:.3f} s,
        openautoglm {brush['openautoglm_s']:.3f} s, ratio {brush['ratio']:.1f}x,
        byte-identical: {brush['byte_identical']}"""))
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "summary": summary, "brush": brush}, indent=1))


if __name__ == "__main__":
    main()
