"""The README's picture of the report page, from real data: the `yolo` pipeline (real YOLOv8n, shipped
calibration) predicts coco-val100 as one Label Studio project, 60 tasks are reviewed in random
order (played from the ground truth, as the review store records a real annotation) with the
project refitted after 32 and 60 reviews as the server does, and 40 stay open. The page is written
to FILE and, with `--screenshot`, shown in headless chromium and saved as a PNG.

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/report_page.py --html /tmp/report.html \
        --screenshot docs/report-page.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from openautoglm.converters import Box, Region
from openautoglm.converters.files import load_displayed
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.reviews.refit import refit
from openautoglm.model.reviews.report_page import report_html
from openautoglm.model.reviews.store import ReviewStore, match
from openautoglm.model.scores.calibration import model_version_of

VAL100 = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco-val100"
REVIEWED, REFIT_AT, PROJECT = 60, (32, 60), "1"


def build(store: ReviewStore, pipeline: Pipeline) -> None:
    doc = json.loads((VAL100 / "annotations" / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in doc["categories"]}
    truth: dict[int, list[Region]] = {}
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        truth.setdefault(a["image_id"], []).append(Region(names[a["category_id"]], box=Box(x, y, x + w, y + h)))
    images = doc["images"]
    calibration, labels = pipeline.calibration, list(pipeline.vocabulary)
    for image_doc in images:
        (prediction,) = pipeline.predict([load_displayed(VAL100 / "images" / image_doc["file_name"])], labels,
                                         calibration=calibration)
        store.save_predictions(model_version_of(pipeline.version, calibration),
                               [(image_doc["id"], prediction.regions, prediction.evidence, prediction.score)],
                               project=PROJECT)
    order = np.random.default_rng(0).permutation(len(images))[:REVIEWED]
    for count, index in enumerate(order, start=1):
        task = images[index]["id"]
        version, predicted = store.prediction(task)
        store.record(f"a{task}", task, version, match(predicted, truth.get(task, [])))
        if count in REFIT_AT:  # the server's refit of the project (the open tasks keep their first scores here)
            calibration = refit(store, pipeline.version, pipeline.display_threshold, pipeline.calibration,
                                project=PROJECT)
            store.calibrations.log_refit(pipeline.version, PROJECT, "done", calibration.digest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, required=True)
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = ReviewStore(Path(folder) / "reviews.sqlite3")
        build(store, Pipeline.load("yolo"))
        args.html.write_text(report_html(store, PROJECT), encoding="utf-8")
    print(f"wrote {args.html}")
    if args.screenshot:
        chromium = shutil.which("chromium") or "chromium"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1100,1350", f"--screenshot={args.screenshot.resolve()}",
                        args.html.resolve().as_uri()], check=True, capture_output=True, timeout=120)
        print(f"wrote {args.screenshot}")


if __name__ == "__main__":
    main()
