"""Fitting calibrations from labelled images (scikit-learn), and the figures that say how good
they are, cross-validated: fit on some images, measure on the others."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from openautoglm.converters.files import load_displayed
from openautoglm.converters.progress import track
from openautoglm.model.errors import ModelError
from openautoglm.model.scores.calibration import (
    Calibration,
    CascadeMaps,
    cascade_region_features,
    cascade_task_features,
    task_features,
    with_label_offsets,
)
from openautoglm.model.scores.evaluation import (
    Detection,
    ImageRecord,
    Outcome,
    accept_threshold,
    auroc_wrong,
    bootstrap_interval,
    ece,
    ece_floor,
    judge,
    review,
)
from openautoglm.model.scores.label_offsets import fit_label_offsets
from openautoglm.model.scores.scoring import ImageEvidence, first_stage, with_second_stage


def collect(pipeline, images_dir: Path, truth_json: Path, batch_size: int = 8) -> list[ImageRecord]:
    """Run an uncalibrated pipeline over every image of a COCO file: raw scores, near misses, truth."""
    try:
        truth = json.loads(Path(truth_json).read_text(encoding="utf-8"))
        names = {c["id"]: c["name"] for c in truth["categories"]}
        images = sorted(truth["images"], key=lambda i: i["id"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{truth_json}: not a readable COCO file ({error})") from None
    objects: dict[int, list] = {}
    for a in truth.get("annotations", []):
        x, y, w, h = a["bbox"]
        objects.setdefault(a["image_id"], []).append((names[a["category_id"]], (x, y, x + w, y + h),
                                                       bool(a.get("iscrowd"))))
    records = []
    for start in track(range(0, len(images), batch_size), "running the model", total=-(-len(images) // batch_size)):
        infos = images[start:start + batch_size]
        loaded = [load_displayed(Path(images_dir) / info["file_name"]) for info in infos]
        started = time.perf_counter()
        predictions = pipeline.predict(loaded, [], second_stage_on_all=True)
        second = sum(p.second_stage_seconds for p in predictions)
        first = (time.perf_counter() - started - second) / len(infos)
        for info, prediction in zip(infos, predictions):
            shown = [Detection(r.label, e.detector_score, r.box.bounds(), e.agreement)
                     for r, e in zip(prediction.regions, prediction.evidence.regions)]
            near = [Detection(r.label, r.score, r.box.bounds()) for r in prediction.near_misses]
            looked = prediction.second_misses is not None
            records.append(ImageRecord(info["id"], info["file_name"], shown, near, objects.get(info["id"], []),
                                       _second_misses(prediction) if looked else None, first,
                                       prediction.second_stage_seconds))
    return records


def _second_misses(prediction) -> list[Detection]:
    """The second stage's uncovered finds, labelled: a label set keeps only its own (evaluation.judge)."""
    return [Detection(r.label, r.score, r.box.bounds()) for r in prediction.second_misses]


TIE_BREAK = 1e-3


def strict_isotonic(scores: np.ndarray, correct: np.ndarray,
                    weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression as breakpoints, blended 0.1 % with the raw score so that it is strictly
    increasing: plain isotonic regression ties every region of a flat step, which throws away the
    raw score's order (AUROC, and the review curve's ties) for no gain in calibration."""
    from sklearn.isotonic import IsotonicRegression

    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, correct,
                                                                                  sample_weight=weights)
    x = np.concatenate([[0.0], isotonic.X_thresholds_, [1.0]])
    y = np.interp(x, isotonic.X_thresholds_, isotonic.y_thresholds_)
    x, keep = np.unique(x, return_index=True)
    return x, (1 - TIE_BREAK) * y[keep] + TIE_BREAK * x


def fit(records: Sequence[ImageRecord], labels: set[str] | None, pipeline_version: str, display_threshold: float,
        provenance: dict | None = None, cascade_below: float | None = None) -> Calibration:
    """Fit on labelled images: regions of every label for the region map, the project's labels
    (`labels`, None for all) for the task model."""
    ids = sorted(r.image_id for r in records)
    about = {"images": len(records), "labels": sorted(labels) if labels else "all",
             "image_ids_sha256": hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16], **(provenance or {})}
    return fit_outcomes([judge(r, None) for r in records], [judge(r, labels) for r in records], pipeline_version,
                        display_threshold, about, cascade_below=cascade_below)


PRIOR_TASKS = 50  # a prior calibration weighs as much as this many reviewed tasks


def region_map(pooled: Sequence[Outcome], prior: Calibration | None, unreviewed: Sequence[ImageEvidence] = (),
                prior_tasks: float = PRIOR_TASKS) -> tuple[np.ndarray, np.ndarray]:
    """The isotonic region map's breakpoints, the prior's pseudo-observations at the regions of
    every task, reviewed or not (`unreviewed`)."""
    scores = np.concatenate([o.scores for o in pooled] + [np.zeros(0)])
    correct = np.concatenate([o.correct for o in pooled] + [np.zeros(0, dtype=bool)]).astype(float)
    if prior is None and (scores.size < 2 or correct.all() or not correct.any()):
        raise ModelError(f"cannot fit a calibration: {scores.size} regions, {int(correct.sum())} of them right; "
                         "it needs both right and wrong regions")
    if prior is not None and not scores.size:
        return np.array(prior.region_x), np.array(prior.region_y)
    weights = np.ones(scores.size)
    if prior is not None:  # each region again, and each unreviewed one, labelled by the prior
        believed = np.concatenate([scores] + [np.asarray(e.raw_scores, dtype=float) for e in unreviewed])
        correct = np.concatenate([correct, prior.region_probability(believed)])
        scores = np.concatenate([scores, believed])
        weights = np.concatenate([weights, np.full(believed.size, prior_tasks / (len(pooled) + len(unreviewed)))])
    return strict_isotonic(scores, correct, weights)


def fit_outcomes(pooled: Sequence[Outcome], project: Sequence[Outcome], pipeline_version: str,
                 display_threshold: float, provenance: dict | None = None,
                 prior: Calibration | None = None, cascade_below: float | None = None,
                 unreviewed: Sequence[ImageEvidence] = (),
                 prior_tasks: float | tuple[float, float] = PRIOR_TASKS) -> Calibration:
    """Region map: isotonic regression of "region is right" on the raw score, made strictly
    increasing, over `pooled` (every label: a hundred images hold too few regions per label for maps
    of their own), with per-label offsets (`label_offsets`). Task model: logistic regression of
    "task needs no edit" over `project`, on the calibrated regions and the near misses.

    `prior` (the calibration a team starts from) joins as pseudo-observations at the team's own
    scores and features, labelled with the prior's probabilities and weighing `prior_tasks` tasks
    (one weight, or the region map's and the task model's: `prior_weight.fit_adaptive` chooses
    them): the team's data dominates as it grows (half the weight at PRIOR_TASKS reviewed tasks).

    `unreviewed`: the project's tasks nobody reviewed yet; the prior's weight is spread over every
    task, so where no review is (lowest-first reviews) the prior stands, not the reviewed part.

    `cascade_below`: a second stage looks at tasks scored below it; its maps are fitted there (`fit_cascade`)."""
    from sklearn.linear_model import LogisticRegression

    if prior is not None and not project:
        raise ModelError("cannot fit a calibration: no reviewed tasks yet")
    region_weight, task_weight = prior_tasks if isinstance(prior_tasks, tuple) else (prior_tasks, prior_tasks)
    unreviewed = unreviewed if prior is not None else ()  # only where a prior stands in for reviews
    region_x, region_y = region_map(pooled, prior, unreviewed, region_weight)
    offsets = fit_label_offsets(pooled, region_x, region_y, prior.label_offsets if prior is not None else None)
    evidence = [(o.scores, o.near_miss_scores, o.labels or None) for o in project] + [
        (np.asarray(e.raw_scores, dtype=float), list(e.near_misses), e.labels) for e in unreviewed]
    every = _task_features(evidence, region_x, region_y, offsets)
    features = every[:len(project)]
    no_edit = np.array([not o.needs_edit for o in project], dtype=float)
    task_weights = np.ones(len(project))
    if prior is not None:  # each task, and each unreviewed one, twice more: right and wrong, weighted by the prior
        believed = np.array([prior.task_probability(prior.region_probability(scores, labels), near)
                             for scores, near, labels in evidence])
        share = task_weight / len(evidence)
        features = np.concatenate([features, every, every])
        no_edit = np.concatenate([no_edit, np.ones(len(evidence)), np.zeros(len(evidence))])
        task_weights = np.concatenate([task_weights, share * believed, share * (1 - believed)])
    mean, scale = features.mean(axis=0), features.std(axis=0)
    scale[scale == 0] = 1.0
    if len(np.unique(no_edit[task_weights > 0])) < 2:  # one class only: the base rate, smoothed
        coef = np.zeros(features.shape[1])
        intercept = float(np.log((no_edit.sum() + 1) / (len(no_edit) - no_edit.sum() + 1)))
    else:
        model = LogisticRegression(C=1.0, max_iter=2000).fit((features - mean) / scale, no_edit.astype(int),
                                                             sample_weight=task_weights)
        coef, intercept = model.coef_[0], float(model.intercept_[0])
    about = {"regions": int(sum(o.scores.size for o in pooled)), "tasks": len(project),
             **({"prior": prior.digest, "prior_tasks": prior_tasks} if prior is not None else {}), **(provenance or {})}
    calibration = Calibration(pipeline_version, display_threshold, tuple(region_x.tolist()),
                              tuple(region_y.tolist()), tuple(mean.tolist()), tuple(scale.tolist()),
                              tuple(np.asarray(coef).tolist()), intercept, about, label_offsets=offsets)
    if cascade_below is None:
        return calibration
    cascade = fit_cascade(pooled, project, calibration, cascade_below)
    if cascade is None and prior is not None:
        cascade = prior.cascade
    return dataclasses.replace(calibration, cascade=cascade)


MIN_CASCADE_TASKS = 20  # fewer tasks seen by the second stage than this: no cascade maps of their own


def _task_features(evidence: list[tuple], region_x: np.ndarray, region_y: np.ndarray,
                   offsets: dict[str, float]) -> np.ndarray:
    """Each task's TASK_FEATURES under this region map and these label offsets; `evidence`: (raw
    scores, near-miss scores, labels or None) per task."""
    return np.array([task_features(with_label_offsets(np.interp(scores, region_x, region_y), labels, offsets), near)
                     for scores, near, labels in evidence])


def _second_stage_saw(outcomes: Sequence[Outcome], calibration: Calibration,
                      below: float) -> list[tuple[Outcome, list[float], float]]:
    """(outcome, first-stage region probabilities, first-stage task probability) of each outcome
    with second-stage evidence whose first-stage task score is below `below`."""
    seen = []
    for outcome in outcomes:
        if outcome.second_misses is None:
            continue
        probabilities, task = first_stage(outcome.evidence, calibration)
        if task < below:
            seen.append((outcome, probabilities, task))
    return seen


def fit_cascade(pooled: Sequence[Outcome], project: Sequence[Outcome], calibration: Calibration,
                below: float) -> CascadeMaps | None:
    """Logistic regressions on the tasks the second stage would see (first-stage task score below
    `below`, and its evidence recorded): region right ~ first-stage log-odds + agreement; task
    needs no edit ~ first-stage log-odds + weakest agreement + best uncovered second-stage score.
    None when there are fewer than MIN_CASCADE_TASKS such tasks or one outcome only."""
    from sklearn.linear_model import LogisticRegression

    regions = _second_stage_saw(pooled, calibration, below)
    tasks = _second_stage_saw(project, calibration, below)
    if len(tasks) < MIN_CASCADE_TASKS:
        return None
    region_x = np.concatenate([cascade_region_features(p, o.agreement) for o, p, _ in regions] + [np.zeros((0, 2))])
    region_y = np.concatenate([o.correct for o, _, _ in regions] + [np.zeros(0, dtype=bool)])
    task_x = np.array([cascade_task_features(task, o.agreement, o.second_misses) for o, _, task in tasks])
    task_y = np.array([not o.needs_edit for o, _, _ in tasks])
    if len(np.unique(region_y)) < 2 or len(np.unique(task_y)) < 2:
        return None
    region = LogisticRegression(C=1.0, max_iter=2000).fit(region_x, region_y)
    task = LogisticRegression(C=1.0, max_iter=2000).fit(task_x, task_y)
    return CascadeMaps(tuple(region.coef_[0].tolist()), float(region.intercept_[0]), tuple(task.coef_[0].tolist()),
                       float(task.intercept_[0]))


def scored(outcomes: Sequence[Outcome], calibration: Calibration | None,
           cascade_below: float | None = None) -> dict[str, np.ndarray]:
    """The scores users would see (raw, or calibrated) beside what was true; with `cascade_below`,
    a calibration's cascade maps apply to the tasks scored below it that have second-stage evidence."""
    region_p, task_p, second = [], [], []
    for o in outcomes:
        evidence = o.evidence
        first = first_stage(evidence, calibration)
        looked = bool(cascade_below is not None and o.second_misses is not None and first[1] < cascade_below)
        p, task = with_second_stage(evidence, calibration, *first) if looked else first
        region_p.append(np.asarray(p, dtype=float))
        task_p.append(task)
        second.append(looked)
    return {"region_p": np.concatenate(region_p + [np.zeros(0)]),
            "region_correct": np.concatenate([o.correct for o in outcomes] + [np.zeros(0, dtype=bool)]),
            "task_p": np.array(task_p), "task_ok": np.array([not o.needs_edit for o in outcomes]),
            "second_stage": np.array(second, dtype=bool)}



def metrics(values: dict[str, np.ndarray]) -> dict:
    region_wrong, task_wrong = ~values["region_correct"], ~values["task_ok"]
    regions, tasks = review(values["region_p"], region_wrong), review(values["task_p"], task_wrong)
    count = len(values["task_p"])

    def accepted_of(indices) -> float:
        return review(values["task_p"][indices], task_wrong[indices]).accepted

    return {
        "regions": int(values["region_p"].size), "tasks": count,
        "region_ece": ece(values["region_p"], values["region_correct"]),
        "region_ece_floor": ece_floor(values["region_p"]),
        "region_auroc": auroc_wrong(values["region_p"], region_wrong),
        "region_review": {"reviewed": regions.reviewed, "floor": regions.floor, "accepted": regions.accepted},
        "task_needs_edit": float(task_wrong.mean()) if count else float("nan"),
        "task_ece": ece(values["task_p"], values["task_ok"]),
        "task_ece_floor": ece_floor(values["task_p"]),
        "task_auroc": auroc_wrong(values["task_p"], task_wrong),
        "task_review": {"reviewed": tasks.reviewed, "floor": tasks.floor, "accepted": tasks.accepted,
                        "threshold": tasks.threshold,
                        "accepted_interval_95": bootstrap_interval(accepted_of, count)},
        "accept_at_2_percent": accept_threshold(values["task_p"], task_wrong),
        "second_stage_share": float(values["second_stage"].mean()) if count else float("nan"),
        "curves": {"regions": regions.curve, "tasks": tasks.curve},
    }


def cross_validate(records: Sequence[ImageRecord], labels: set[str] | None, pipeline_version: str,
                   display_threshold: float, folds: int = 2, cascade_below: float | None = None) -> dict:
    """Fit on all folds but one, measure raw and calibrated scores on that one, for each fold."""
    ordered = sorted(records, key=lambda r: r.image_id)
    return cross_validate_outcomes([judge(r, None) for r in ordered], [judge(r, labels) for r in ordered],
                                   pipeline_version, display_threshold, folds, cascade_below=cascade_below)


def cross_validate_outcomes(pooled: Sequence[Outcome], project: Sequence[Outcome], pipeline_version: str,
                            display_threshold: float, folds: int = 2, prior: Calibration | None = None,
                            cascade_below: float | None = None, fitter=None) -> dict:
    """`cross_validate` for outcomes already judged (labelled images, or reviews from the store),
    each fold fitted by `fitter` (default `fit_outcomes`; the review refit's `fit_adaptive`).
    With `cascade_below`, "calibrated" is the first stage alone and "cascade" adds the second stage
    on the held-out tasks scored below it."""
    results = []
    for fold in range(folds):
        def part(items, held, fold=fold):
            return [o for i, o in enumerate(items) if (i % folds == fold) == held]
        calibration = (fitter or fit_outcomes)(part(pooled, False), part(project, False), pipeline_version,
                                               display_threshold, prior=prior, cascade_below=cascade_below)
        outcomes = part(project, True)
        first_stage = dataclasses.replace(calibration, cascade=None)
        results.append({"fold": fold, "fitted_on": len(part(project, False)), "held_out": len(outcomes),
                        "raw": metrics(scored(outcomes, None)), "calibrated": metrics(scored(outcomes, first_stage)),
                        "reliability": reliability(scored(outcomes, None), scored(outcomes, first_stage))})
        if cascade_below is not None:
            results[-1]["cascade"] = metrics(scored(outcomes, calibration, cascade_below))
            results[-1]["cascade_fitted"] = calibration.cascade is not None
    sides = ("raw", "calibrated") + (("cascade",) if cascade_below is not None else ())
    return {"folds": results, "mean": {side: _mean([f[side] for f in results]) for side in sides}}


def reliability(raw: dict, calibrated: dict, bins: int = 10) -> dict:
    """Per bin: mean predicted probability and observed frequency, for the reliability diagram."""
    def table(p, y):
        which = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
        return [(float(np.mean(p[which == b])), float(np.mean(y[which == b])), int((which == b).sum()))
                for b in range(bins) if (which == b).any()]
    return {"regions_raw": table(raw["region_p"], raw["region_correct"]),
            "regions_calibrated": table(calibrated["region_p"], calibrated["region_correct"]),
            "tasks_raw": table(raw["task_p"], raw["task_ok"]),
            "tasks_calibrated": table(calibrated["task_p"], calibrated["task_ok"])}


def _mean(results: list[dict]) -> dict:
    keys = ("region_ece", "region_auroc", "task_ece", "task_auroc", "task_needs_edit")
    mean = {k: float(np.nanmean([r[k] for r in results])) for k in keys}
    mean["task_accepted"] = float(np.nanmean([r["task_review"]["accepted"] for r in results]))
    mean["task_reviewed"] = float(np.nanmean([r["task_review"]["reviewed"] for r in results]))
    mean["region_accepted"] = float(np.nanmean([r["region_review"]["accepted"] for r in results]))
    mean["second_stage_share"] = float(np.nanmean([r["second_stage_share"] for r in results]))
    mean["accepted_at_2_percent"] = float(np.nanmean([r["accept_at_2_percent"]["accepted_share"] for r in results]))
    return mean
