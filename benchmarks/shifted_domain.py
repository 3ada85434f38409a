"""A new project on a shifted domain: how the scores hold up before any review and how fast the
project's refits adapt (issue #26, item 3).

The domain: coco-val100 and coco-train209 (309 images) corrupted as in COCO-C (Michaelis et al.
2019, the `imagecorruptions` package): each image gets one of motion blur, JPEG compression,
Gaussian noise and snow, at severity 3-5, chosen by its id; the images are written to a temporary
folder, never committed. YOLOv8n runs once over them (raw scores and near misses kept).

For each of SPLITS random splits, half the tasks are the project's reviewed ones (in random order)
and the other half is held out for measuring: region ECE, task ECE and the accepted share at 95 %
of needing-edit tasks caught, for the raw detector score, the shipped calibration (what a new
project starts with), and the project's refit after 16, 32, 64 and all of its half reviewed,
with the prior weighing PRIOR_TASKS tasks (as before) and with the prior's weight chosen by
cross-validation on the project's own reviews (`prior_weight.fit_adaptive`). Mean over the splits,
with the spread.

    pip install imagecorruptions 'setuptools<81'   # it imports pkg_resources
    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/shifted_domain.py [--splits 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from openautoglm.converters import progress
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.scores.evaluation import TRAFFIC_LABELS, ece, judge, review
from openautoglm.model.scores.fitting import collect, fit, fit_outcomes, scored
from openautoglm.model.scores.prior_weight import fit_adaptive

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CORRUPTIONS = ("motion_blur", "jpeg_compression", "gaussian_noise", "snow")
STEPS = (16, 32, 64)


def corrupted(name: str, folder: Path) -> tuple[Path, Path]:
    """The set's images, each with its corruption, under `folder`; the unchanged truth file."""
    try:
        from imagecorruptions import corrupt
    except ImportError:
        raise SystemExit("pip install imagecorruptions 'setuptools<81' (COCO-C corruptions)") from None
    root = SHARED / name
    truth = root / "annotations" / "instances.json"
    out = folder / name
    out.mkdir(parents=True)
    for info in json.loads(truth.read_text())["images"]:
        image = np.asarray(Image.open(root / "images" / info["file_name"]).convert("RGB"))
        kind, severity = CORRUPTIONS[info["id"] % len(CORRUPTIONS)], 3 + info["id"] % 3
        np.random.seed(info["id"])  # imagecorruptions draws from NumPy's global generator: the same domain each run
        Image.fromarray(np.uint8(corrupt(image, corruption_name=kind, severity=severity))).save(
            out / info["file_name"], quality=95)
    return out, truth


def measure(calibration, outcomes) -> dict:
    values = scored(outcomes, calibration)
    return {"region_ece": ece(values["region_p"], values["region_correct"]),
            "task_ece": ece(values["task_p"], values["task_ok"]),
            "accepted": review(values["task_p"], ~values["task_ok"]).accepted}


def before_any_review(prior, outcomes, rounds: int = 1000) -> str:
    """Region ECE of the prior and of the raw score on every image of the domain, and their
    difference with a 95 % interval from resampling images (paired: the same images both ways)."""
    raw, calibrated = scored(outcomes, None), scored(outcomes, prior)
    per_image = np.repeat(np.arange(len(outcomes)), [len(o.scores) for o in outcomes])
    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(rounds):
        chosen = np.concatenate([np.flatnonzero(per_image == i) for i in rng.integers(0, len(outcomes), len(outcomes))])
        gaps.append(ece(calibrated["region_p"][chosen], calibrated["region_correct"][chosen])
                    - ece(raw["region_p"][chosen], raw["region_correct"][chosen]))
    low, high = np.percentile(gaps, [2.5, 97.5])
    prior_ece = ece(calibrated["region_p"], calibrated["region_correct"])
    raw_ece = ece(raw["region_p"], raw["region_correct"])
    return (f"before any review, all {len(outcomes)} images: region ECE prior {prior_ece:.3f}, raw {raw_ece:.3f}, "
            f"prior minus raw {prior_ece - raw_ece:+.3f} (95 % interval {low:+.3f} to {high:+.3f}, images resampled)")


def split(prior, pooled, outcomes, seed: int) -> dict:
    order = np.random.default_rng(seed).permutation(len(outcomes))
    half = len(order) // 2
    reviewed, held = order[:half], order[half:]
    test = [outcomes[i] for i in held]
    rows = {"raw": measure(None, test), "shipped": measure(prior, test)}
    for count in (*[step for step in STEPS if step < half], half):
        seen = reviewed[:count]
        fixed = fit_outcomes([pooled[i] for i in seen], [outcomes[i] for i in seen], prior.pipeline_version,
                             prior.display_threshold, prior=prior)
        waiting = [outcomes[i].evidence for i in order[count:]]  # as the server gives its open tasks
        adaptive = fit_adaptive([pooled[i] for i in seen], [outcomes[i] for i in seen], prior.pipeline_version,
                                prior.display_threshold, prior=prior, unreviewed=waiting)
        rows[f"fixed {count}"], rows[f"adaptive {count}"] = measure(fixed, test), measure(adaptive, test)
        weights = adaptive.provenance["prior_tasks"]  # (regions, tasks), or one weight where none was chosen
        rows[f"adaptive {count}"]["prior_tasks"] = tuple(weights) if isinstance(weights, (list, tuple)) else \
            (weights, weights)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--unseen", action="store_true",
                        help="the domain is corrupted coco-val100 alone, the prior fitted on clean coco-train209: "
                             "images neither the calibration (the shipped one is fitted on coco-val100) nor the "
                             "detector (trained on coco-train209) saw")
    args = parser.parse_args()
    pipeline = Pipeline.load("yolo", calibration=None)
    prior = Pipeline.load("yolo").calibration
    with tempfile.TemporaryDirectory() as folder, progress.enabled():
        records = []
        for name in ("coco-val100",) if args.unseen else ("coco-val100", "coco-train209"):
            records += collect(pipeline, *corrupted(name, Path(folder)))
        if args.unseen:
            clean = SHARED / "coco-train209"
            prior = fit(collect(pipeline, clean / "images", clean / "annotations" / "instances.json"), None,
                        pipeline.version, pipeline.display_threshold, {"data": "coco-train209"})
    for labels_name, labels in (("all", None), ("traffic", set(TRAFFIC_LABELS))):
        pooled, outcomes = [judge(r, None) for r in records], [judge(r, labels) for r in records]
        runs = [split(prior, pooled, outcomes, seed) for seed in range(args.splits)]
        print(f"\n{labels_name} labels: {before_any_review(prior, outcomes)}")
        print(f"{labels_name} labels, {len(records)} corrupted images, {args.splits} splits (mean, sd):")
        print("| scores | region ECE | task ECE | accepted at 95 % caught | prior weight (tasks) |")
        print("|---|---|---|---|---|")
        for key in runs[0]:
            cells = []
            for metric in ("region_ece", "task_ece", "accepted"):
                values = [run[key][metric] for run in runs]
                cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
            weights = [run[key].get("prior_tasks") for run in runs]
            weight = "" if weights[0] is None else "regions {:g}, tasks {:g} (medians)".format(
                *np.median(np.array(weights, dtype=float).reshape(len(runs), -1), axis=0))
            print(f"| {key} | " + " | ".join(cells) + f" | {weight} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
