"""Clicks that find what the detector missed: a positive keypoint (Label Studio's smart tool) at the
centre of each coco-val100 object, with the object's label, answered by `Pipeline.objects_at`
(the `yolo` pipeline, real YOLOv8n), against the rule before it (baseline, same run): the
best-scored *shown* detection of that label under the click.

An object is *shown* when a displayed detection of its label overlaps it by IoU >= 0.5, else
*missed*; a click *finds* it when the returned box has IoU >= 0.5 with it. Also measured: clicks
without a label (CVAT's interactor sends none), clicks jittered uniformly over the middle half of
the object (a person does not hit the centre), 5 background clicks per image (outside every
ground-truth box, with the image's first label: they should find nothing), the time per click, and
how well the click scores hold (5-fold cross-validated ECE of the isotonic click map).

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/clicks.py [--fit] [--data coco-train209]

The rule's constants were chosen on coco-val100; `--data coco-train209` checks them on images they
were not chosen on (images YOLOv8n was trained on, so fewer objects are missed there).

`--fit` writes the click score map fitted on every click (centre and jittered) to
model/scores/calibrations/<pipeline>.clicks.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold

from openautoglm.converters import Box
from openautoglm.converters.files import load_displayed
from openautoglm.converters.geometry import box_iou
from openautoglm.model.inference import pipeline as pipeline_module
from openautoglm.model.inference.clicks import Click
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.scores.click_scores import ClickScores
from openautoglm.model.scores.evaluation import ece

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BACKGROUND_CLICKS = 5


def objects(doc: dict) -> dict[int, list[tuple[str, Box, bool]]]:
    names = {c["id"]: c["name"] for c in doc["categories"]}
    found: dict[int, list] = {}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        found.setdefault(a["image_id"], []).append((names[a["category_id"]], Box(x, y, x + w, y + h),
                                                    bool(a.get("iscrowd"))))
    return found


def baseline(shown, click: Click):
    """The rule before: the best-scored shown detection of the click's label under it."""
    under = [r for r in shown if (click.label is None or r.label == click.label)
             and r.box.x1 <= click.x <= r.box.x2 and r.box.y1 <= click.y <= r.box.y2]
    return max(under, key=lambda r: r.score, default=None)


def finds(region, label: str, box: Box) -> bool:
    return region is not None and region.label == label and box_iou(region.box, box) >= 0.5


def background(size, boxes, rng) -> list[tuple[float, float]]:
    width, height = size
    points = []
    for _ in range(200):  # an image covered by boxes may have no background to click
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        if not any(b.x1 <= x <= b.x2 and b.y1 <= y <= b.y2 for b in boxes):
            points.append((x, y))
        if len(points) == BACKGROUND_CLICKS:
            break
    return points


def measure(pipeline: Pipeline, root: Path) -> dict:
    doc = json.loads((root / "annotations" / "instances.json").read_text())
    truth, labels, rng = objects(doc), list(pipeline.vocabulary), np.random.default_rng(0)
    rows, background_found, background_baseline, seconds, seconds_twice = [], [], [], [], []
    for image_doc in doc["images"]:
        image = load_displayed(root / "images" / image_doc["file_name"])
        (prediction,) = pipeline.predict([image], labels)
        items = truth.get(image_doc["id"], [])
        for label, box, crowd in items:
            if crowd:
                continue
            shown = any(r.label == label and box_iou(r.box, box) >= 0.5 for r in prediction.regions)
            jitter = (rng.uniform(-0.25, 0.25) * box.width, rng.uniform(-0.25, 0.25) * box.height)
            centre = ((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2)
            row = {"shown": shown}
            for name, (x, y), label_given in (("centre", centre, True), ("jittered", np.add(centre, jitter), True),
                                               ("no_label", centre, False)):
                click = Click(float(x), float(y), label if label_given else None)
                order = (False, True) if len(seconds) % 2 else (True, False)  # neither always second
                runs = dict(zip(order, (timed(pipeline, image, click, labels, reuse) for reuse in order)))
                (found, once_s), (found_twice, twice_s) = runs[True], runs[False]
                if found != found_twice:
                    raise SystemExit(f"image {image_doc['id']}: one model run found {found}, two {found_twice}")
                seconds.append(once_s)
                seconds_twice.append(twice_s)
                before = baseline(prediction.regions, click)
                row[name] = finds(found[0] if found else None, label, box)
                row[name + "_baseline"] = finds(before, label, box)
                row[name + "_score"] = found[0].score if found else None
                row[name + "_same_as_baseline"] = (found[0].box if found else None) == (before.box if before else None)
            rows.append(row)
        first_label = items[0][0] if items else labels[0]
        for x, y in background(image.size, [b for _, b, _ in items], rng):
            click = Click(x, y, first_label)
            background_found.append(bool(pipeline.objects_at(image, [click], labels)))
            background_baseline.append(baseline(prediction.regions, click) is not None)
    return {"rows": rows, "background_found": background_found, "background_baseline": background_baseline,
            "seconds": seconds, "seconds_twice": seconds_twice}


def timed(pipeline: Pipeline, image, click: Click, labels: list[str], reuse: bool) -> tuple[list, float]:
    """A click's finds and its seconds; without `reuse`, as before session 14: the model run again
    for the candidates of the click's label."""
    started = time.perf_counter()
    with contextlib.nullcontext() if reuse else two_model_runs():
        found = pipeline.objects_at(image, [click], labels)
    return found, time.perf_counter() - started


@contextlib.contextmanager
def two_model_runs():
    kept = pipeline_module.one_forward_per_image
    pipeline_module.one_forward_per_image = lambda proposers: contextlib.nullcontext()
    try:
        yield
    finally:
        pipeline_module.one_forward_per_image = kept


def share(rows, key: str, shown: bool) -> tuple[float, int]:
    picked = [r[key] for r in rows if r["shown"] == shown]
    return float(np.mean(picked)), len(picked)


def click_map(pipeline: Pipeline, rows) -> tuple[ClickScores, float, float]:
    """The isotonic map from every click's raw score to its being right, and the 5-fold
    cross-validated ECE of that map against the detector's own calibration on the same clicks."""
    pairs = [(r[k + "_score"], r[k]) for r in rows for k in ("centre", "jittered") if r[k + "_score"] is not None]
    scores, right = np.array([s for s, _ in pairs]), np.array([h for _, h in pairs], dtype=float)
    held_out = np.zeros_like(scores)
    for fit_on, test_on in KFold(5, shuffle=True, random_state=0).split(scores):
        fold = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores[fit_on], right[fit_on])
        held_out[test_on] = fold.predict(scores[test_on])
    detector = pipeline.calibration.region_probability(scores) if pipeline.calibration else scores
    full = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, right)
    knots = ClickScores(pipeline.version, tuple(map(float, full.X_thresholds_)), tuple(map(float, full.y_thresholds_)))
    return knots, ece(held_out, right), ece(detector, right)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="yolo")
    parser.add_argument("--fit", action="store_true", help="write the click score map it fits")
    parser.add_argument("--data", default="coco-val100", help="a COCO set in ../shared/data")
    args = parser.parse_args()
    pipeline = Pipeline.load(args.model)
    measured = measure(pipeline, DATA / args.data)
    rows = measured["rows"]
    for key in ("centre", "jittered", "no_label"):
        for shown in (False, True):
            new, count = share(rows, key, shown)
            old, _ = share(rows, key + "_baseline", shown)
            same, _ = share(rows, key + "_same_as_baseline", shown)
            print(f"{key:9s} {'shown ' if shown else 'missed'} objects ({count}): found {new:.1%} "
                  f"(baseline {old:.1%}; same box as the baseline {same:.1%})")
    print(f"background clicks finding something: {np.mean(measured['background_found']):.1%} "
          f"of {len(measured['background_found'])} (baseline {np.mean(measured['background_baseline']):.1%})")
    seconds = np.array(measured["seconds"])
    twice = np.array(measured["seconds_twice"])
    print(f"per click: median {np.median(seconds):.3f} s, 95th percentile {np.percentile(seconds, 95):.3f} s; "
          f"running the model twice (before): median {np.median(twice):.3f} s, 95th percentile "
          f"{np.percentile(twice, 95):.3f} s; median of the per-click ratio before / now "
          f"{np.median(twice / seconds):.2f}x (same finds)")
    knots, cross_validated, detector = click_map(pipeline, rows)
    print(f"click scores, ECE: isotonic click map {cross_validated:.3f} (5-fold), "
          f"detector's calibration {detector:.3f}")
    if args.fit:
        path = ROOT / "model" / "scores" / "calibrations" / f"{pipeline.name}.clicks.json"
        knots.save(path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
