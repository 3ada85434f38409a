"""`openautoglm calibrate` and `openautoglm eval`: fit a pipeline's calibration on labelled images,
and measure raw and calibrated scores, cross-validated, as JSON, Markdown and figures."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from openautoglm.converters import progress
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.reviews.refit import refit, reviewed_outcomes
from openautoglm.model.reviews.store import open_store
from openautoglm.model.scores.calibration import Calibration
from openautoglm.model.scores.evaluation import TRAFFIC_LABELS, judge
from openautoglm.model.scores.fitting import collect, cross_validate, cross_validate_outcomes, fit, metrics, scored
from openautoglm.model.scores.prior_weight import fit_adaptive

LABEL_SETS = {"all": None, "traffic": set(TRAFFIC_LABELS)}


def _raw_pipeline(args) -> Pipeline:
    """The pipeline with raw scores: what a calibration maps from."""
    return Pipeline.load(args.model, args.device, calibration=None)


def _cascade_below(pipeline) -> float | None:
    return pipeline.second_stage.below if pipeline.second_stage else None


def _records(args):
    pipeline = _raw_pipeline(args)
    with progress.enabled():
        return pipeline, collect(pipeline, Path(args.images), Path(args.truth))


def run_calibrate(args) -> int:
    if args.store:
        return calibrate_from_reviews(args)
    _need_truth(args)
    pipeline, records = _records(args)
    labels = set(args.labels) if args.labels else None
    below = _cascade_below(pipeline)
    estimate = cross_validate(records, labels, pipeline.version, pipeline.display_threshold,
                              cascade_below=below)["mean"]
    calibration = fit(records, labels, pipeline.version, pipeline.display_threshold,
                      {"data": Path(args.images).resolve().parent.name, "truth": Path(args.truth).name,
                       "command": "openautoglm calibrate", "cross_validated": estimate}, below)
    calibration.save(Path(args.out))
    _print_estimate(estimate, len(records), "images")
    print(f"calibration {calibration.digest}: {args.out}", file=sys.stderr)
    return 0


def _need_truth(args) -> None:
    if not (args.images and args.truth):
        raise ModelError("give --images and --truth (a COCO instances file for those images)"
                         + (" or --store" if hasattr(args, "store") else ""))


def calibrate_from_reviews(args) -> int:
    """Fit from what reviewers did in Label Studio: the review store's outcomes (of one project with
    `--project`, as the server refits each project), each with the raw score the region was
    predicted with and the task's near misses; `--prior FILE` pools them with the calibration the
    team started from."""
    store = open_store(args.store)
    pipeline = _raw_pipeline(args)
    prior = Calibration.load(Path(args.prior)) if getattr(args, "prior", None) else None
    project = getattr(args, "project", None)
    outcomes = reviewed_outcomes(store, pipeline.version, project)
    below = _cascade_below(pipeline)
    estimate = cross_validate_outcomes(outcomes, outcomes, pipeline.version, pipeline.display_threshold,
                                       prior=prior, cascade_below=below, fitter=fit_adaptive)["mean"]
    calibration = refit(store, pipeline.version, pipeline.display_threshold, prior, Path(args.out),
                        {"command": "openautoglm calibrate --store", "cross_validated": estimate}, outcomes, below,
                        project)
    _print_estimate(estimate, len(outcomes), "reviewed tasks")
    print(f"calibration {calibration.digest}: {args.out}", file=sys.stderr)
    return 0


def _print_estimate(estimate: dict, count: int, what: str) -> None:
    raw, calibrated = estimate["raw"], estimate["calibrated"]
    print(f"region ECE {raw['region_ece']:.3f} -> {calibrated['region_ece']:.3f}, task ECE {raw['task_ece']:.3f} -> "
          f"{calibrated['task_ece']:.3f}, tasks accepted at 95 % caught {raw['task_accepted']:.0%} -> "
          f"{calibrated['task_accepted']:.0%} (2-fold cross-validated on {count} {what})", file=sys.stderr)
    if "cascade" in estimate:
        cascade = estimate["cascade"]
        print(f"with the cascade's second stage on {cascade['second_stage_share']:.0%} of the tasks: task ECE "
              f"{cascade['task_ece']:.3f}, tasks accepted {cascade['task_accepted']:.0%}", file=sys.stderr)


def run_eval(args) -> int:
    _need_truth(args)
    pipeline, records = _records(args)
    threshold = pipeline.display_threshold
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = {"project": set(args.labels)} if args.labels else LABEL_SETS
    given = Calibration.load(Path(args.calibration)) if args.calibration else None
    below = _cascade_below(pipeline)
    report = {"pipeline": pipeline.version, "images": len(records), "display_threshold": threshold,
              "map": mean_average_precision(records, Path(args.truth)), "label_sets": {}}
    for name, labels in sets.items():
        entry = {"labels": sorted(labels) if labels else "all",
                 "cross_validated": cross_validate(records, labels, pipeline.version, threshold, args.folds, below)}
        if below is not None:
            entry["cascade_cost"] = cascade_cost(records, entry["cross_validated"]["mean"]["cascade"], below)
        if given is not None:
            outcomes = [judge(r, labels) for r in records]
            entry["given_calibration"] = {"digest": given.digest, "metrics": metrics(scored(outcomes, given)),
                                          "note": "measured on these images; if the calibration was fitted on "
                                                  "them too, this is not a held-out figure"}
        report["label_sets"][name] = entry
        figures(entry["cross_validated"], out, name)
    (out / "report.json").write_text(json.dumps(_plain(report), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    return 0


def cascade_cost(records, cascade_mean: dict, below: float) -> dict:
    """Seconds per image with and without the second stage: the first stage on every image, the
    second on the share scored below `below` (measured here on all of them, as fitting needs)."""
    first = sum(r.seconds for r in records) / max(1, len(records))
    second = sum(r.second_seconds for r in records) / max(1, len(records))
    share = cascade_mean["second_stage_share"]
    return {"below": below, "second_stage_share": share, "first_stage_seconds_per_image": first,
            "second_stage_seconds_per_image": second, "with_cascade_seconds_per_image": first + share * second,
            "extra_time": share * second / first if first else float("nan")}


def mean_average_precision(records, truth_json: Path) -> dict:
    """pycocotools mAP of the shown regions, and of every candidate down to the evidence floor."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(truth_json))
    ids = {c["name"]: c["id"] for c in truth.loadCats(truth.getCatIds())}
    result = {}
    for name, pick in (("display_threshold", lambda r: r.shown), ("full_curve", lambda r: r.shown + r.near_misses)):
        detections = [{"image_id": r.image_id, "category_id": ids[d.label], "score": d.score,
                       "bbox": [d.box[0], d.box[1], d.box[2] - d.box[0], d.box[3] - d.box[1]]}
                      for r in records for d in pick(r) if d.label in ids]
        with contextlib.redirect_stdout(io.StringIO()):
            evaluation = COCOeval(truth, truth.loadRes(detections), "bbox")
            evaluation.params.imgIds = [r.image_id for r in records]
            evaluation.evaluate(), evaluation.accumulate(), evaluation.summarize()
        result[name] = {"map50_95": float(evaluation.stats[0]), "map50": float(evaluation.stats[1])}
    return result


def figures(cross_validated: dict, out: Path, name: str) -> None:
    """Reliability diagrams (raw and calibrated, regions and tasks) and review curves, fold by fold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folds = cross_validated["folds"]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for axis, kind in zip(axes, ("regions", "tasks")):
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
        for fold in folds:
            for side, style in (("raw", "--"), ("calibrated", "-")):
                rows = fold["reliability"][f"{kind}_{side}"]
                axis.plot([r[0] for r in rows], [r[1] for r in rows], style, marker="o",
                          label=f"{side}, fold {fold['fold']}")
        axis.set(title=f"{kind}: predicted vs observed ({name} labels)", xlabel="predicted probability of right"
                 if kind == "regions" else "predicted probability of no edit", ylabel="observed frequency",
                 xlim=(0, 1), ylim=(0, 1))
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / f"reliability-{name}.png", dpi=110)
    plt.close(figure)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for axis, kind in zip(axes, ("tasks", "regions")):
        for fold in folds:
            for side, style in (("raw", "--"), ("calibrated", "-"), ("cascade", ":")):
                if side not in fold:  # a cascade pipeline's report has the cascade's curve too
                    continue
                curve = fold[side]["curves"][kind]
                axis.plot([c[0] for c in curve], [c[1] for c in curve], style, label=f"{side}, fold {fold['fold']}")
        axis.axhline(0.95, color="grey", linestyle=":", label="95 % caught")
        axis.set(title=f"review curve, {kind} ({name} labels)", xlabel=f"share of {kind} reviewed (lowest score first)",
                 ylabel="share of wrong items caught", xlim=(0, 1), ylim=(0, 1.02))
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / f"review-{name}.png", dpi=110)
    plt.close(figure)


def markdown(report: dict) -> str:
    lines = [f"# Calibration report: {report['pipeline']}", "",
             f"{report['images']} images, display threshold {report['display_threshold']}. mAP@0.5 / mAP@[.5:.95]: "
             f"{report['map']['display_threshold']['map50']:.3f} / "
             f"{report['map']['display_threshold']['map50_95']:.3f} "
             f"at the display threshold, {report['map']['full_curve']['map50']:.3f} / "
             f"{report['map']['full_curve']['map50_95']:.3f} over the candidates down to the evidence floor.", ""]
    for name, entry in report["label_sets"].items():
        lines += [f"## {name} labels (fit on one fold, measured on the other)", "",
                  "| fold | scores | region ECE (a perfect score's) | region AUROC | task ECE (a perfect score's) | "
                  "task AUROC | tasks needing an edit | "
                  "tasks reviewed for 95 % caught (floor) | correct tasks accepted (95 % interval) | "
                  "accept above (≤ 2 % wrong): share |", "|---|---|---|---|---|---|---|---|---|---|"]
        sides = ("raw", "calibrated") + (("cascade",) if "cascade_cost" in entry else ())
        for fold in entry["cross_validated"]["folds"]:
            for side in sides:
                m = fold[side]
                low, high = m["task_review"]["accepted_interval_95"]
                accept = m["accept_at_2_percent"]
                lines.append(f"| {fold['fold']} | {side} | {m['region_ece']:.3f} ({_floor(m['region_ece_floor'])}) | "
                             f"{m['region_auroc']:.3f} | {m['task_ece']:.3f} ({_floor(m['task_ece_floor'])}) | "
                             f"{m['task_auroc']:.3f} | {m['task_needs_edit']:.0%} | "
                             f"{m['task_review']['reviewed']:.0%} ({m['task_review']['floor']:.0%}) | "
                             f"{m['task_review']['accepted']:.0%} ({low:.0%}-{high:.0%}) | "
                             f"{_threshold(accept['threshold'])}: {accept['accepted_share']:.0%} |")
        for side in sides:
            m = entry["cross_validated"]["mean"][side]
            lines.append(f"| mean | {side} | {m['region_ece']:.3f} | {m['region_auroc']:.3f} | {m['task_ece']:.3f} | "
                         f"{m['task_auroc']:.3f} | {m['task_needs_edit']:.0%} | {m['task_reviewed']:.0%} | "
                         f"{m['task_accepted']:.0%} | |")
        lines += ["", "A perfect score's ECE: what a perfectly calibrated score with the same predictions would "
                  "measure on this many items (median-95th percentile of simulated outcomes). ECE is noisy on "
                  "small data; a figure inside that range is as good as this data can show.",
                  *_cascade_lines(entry),
                  "", f"![reliability](reliability-{name}.png)", f"![review curves](review-{name}.png)", ""]
    return "\n".join(lines) + "\n"


def _cascade_lines(entry: dict) -> list[str]:
    cost = entry.get("cascade_cost")
    if cost is None:
        return []
    calibrated, cascade = entry["cross_validated"]["mean"]["calibrated"], entry["cross_validated"]["mean"]["cascade"]
    return ["", f"Cascade: the second stage looks at tasks scored below {cost['below']}: "
            f"{cost['second_stage_share']:.0%} of them. Time per image {cost['first_stage_seconds_per_image']:.3f} s "
            f"without it, {cost['with_cascade_seconds_per_image']:.3f} s with it (+{cost['extra_time']:.2f}x). "
            f"Correct tasks accepted at 95 % caught: {calibrated['task_accepted']:.0%} -> "
            f"{cascade['task_accepted']:.0%}; "
            f"accepted above the 2 %-wrong threshold: {calibrated['accepted_at_2_percent']:.0%} -> "
            f"{cascade['accepted_at_2_percent']:.0%}; task AUROC {calibrated['task_auroc']:.3f} -> "
            f"{cascade['task_auroc']:.3f} (means over folds)."]


def _floor(floor) -> str:
    median, high = floor
    return f"{median:.3f}-{high:.3f}"


def _threshold(value) -> str:
    return "none" if value is None else ("any" if value == float("-inf") else f"{value:.3f}")


def _plain(value):
    """Strict JSON: NaN and infinities become null, numpy values plain numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
