"""Simulated review loop: a team reviews coco-val100 in Label Studio in batches of 16 tasks, the
backend refits every 32 reviewed tasks, starting from a calibration fitted on coco-train209 only
(images YOLOv8n was trained on, so that calibration is over-confident on new images).

Reviews are played from the ground truth with the definitions of `model/scores/evaluation.py` (what the
review store records from a real annotation), and each refit is the server's: the reviewed tasks
pooled with the starting calibration as a prior (`fit_adaptive(..., prior=)`). After each refit,
on the tasks not reviewed yet: task ECE, the accepted share at 95 % of needing-edit tasks caught,
and a bulk accept at calibrated task score >= 0.95 (share accepted, measured error). Averaged over
ORDERS random review orders; baseline: the starting calibration, never refitted.

Review order (`order_table`): a random 40 % of coco-val100 is held out for measuring, the rest is
reviewed either in random order or lowest task score first (re-sorted by the refitted scores after
each refit, as Label Studio's queue is), refitting every REFIT_EVERY; the refit pools the prior
either over the reviewed tasks only (plain) or over every task of the project, reviewed or not
(`fit_adaptive(unreviewed=)`, what the server does). Same held-out tasks for both orders, ORDERS
splits; baseline: random order.

    OPENAUTOGLM_MODEL_DIR=../shared/models python benchmarks/review_loop.py [--out benchmarks/review_loop]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from openautoglm.converters import progress
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.scores.evaluation import TRAFFIC_LABELS, ece, judge, review
from openautoglm.model.scores.fitting import collect, fit, scored
from openautoglm.model.scores.prior_weight import fit_adaptive

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BATCH, REFIT_EVERY, ORDERS, ACCEPT_AT = 16, 32, 20, 0.95
HELD_OUT, ORDER_REFIT_EVERY = 0.4, 16


def _records(pipeline, name: str):
    root = SHARED / name
    return collect(pipeline, root / "images", root / "annotations" / "instances.json")


def measure(calibration, outcomes) -> dict:
    values = scored(outcomes, calibration)
    p, wrong = values["task_p"], ~values["task_ok"]
    accepted = p >= ACCEPT_AT
    return {"tasks": len(outcomes), "region_ece": ece(values["region_p"], values["region_correct"]),
            "task_ece": ece(p, values["task_ok"]), "accepted_95_caught": review(p, wrong).accepted,
            "bulk_share": float(accepted.mean()), "bulk_errors": int(wrong[accepted].sum()),
            "bulk_count": int(accepted.sum())}


def play(prior, pooled, outcomes, seed: int) -> list[dict]:
    """Reviews come in batches of BATCH; only the refit points (every REFIT_EVERY) change a score."""
    order = np.random.default_rng(seed).permutation(len(outcomes))
    rows, calibration = [], prior
    for reviewed in range(0, len(outcomes), REFIT_EVERY):
        if reviewed:
            calibration = fit_adaptive([pooled[i] for i in order[:reviewed]], [outcomes[i] for i in order[:reviewed]],
                                       prior.pipeline_version, prior.display_threshold, prior=prior)
        rest = [outcomes[i] for i in order[reviewed:]]
        rows.append({"reviewed": reviewed, "refitted": measure(calibration, rest), "prior": measure(prior, rest)})
    return rows


def play_order(prior, pooled, outcomes, seed: int, order: str, coverage: bool) -> list[dict]:
    """Measured on a held-out random part; the rest reviewed in `order`, a refit every ORDER_REFIT_EVERY."""
    shuffled = np.random.default_rng(seed).permutation(len(outcomes))
    held, pool = shuffled[:int(HELD_OUT * len(outcomes))], list(shuffled[int(HELD_OUT * len(outcomes)):])
    reviewed, calibration, rows = [], prior, []
    while True:
        rows.append({"reviewed": len(reviewed), "held_out": measure(calibration, [outcomes[i] for i in held])})
        waiting = [i for i in pool if i not in reviewed]
        if len(waiting) < ORDER_REFIT_EVERY:
            return rows
        if order == "ascending":  # the queue sorted by the scores it shows now
            shown = scored([outcomes[i] for i in waiting], calibration)["task_p"]
            waiting = [waiting[j] for j in np.argsort(shown, kind="stable")]
        reviewed += waiting[:ORDER_REFIT_EVERY]
        rest = [outcomes[i].evidence for i in pool if i not in reviewed] if coverage else ()
        calibration = fit_adaptive([pooled[i] for i in reviewed], [outcomes[i] for i in reviewed],
                                   prior.pipeline_version, prior.display_threshold, prior=prior, unreviewed=rest)


def order_table(prior, pooled, outcomes) -> list[dict]:
    """Per refit step and (order, fit), the mean held-out figures over ORDERS splits, with their spread."""
    variants = {f"{order}, {'every task' if coverage else 'reviewed only'}": (order, coverage)
                for order in ("random", "ascending") for coverage in (False, True)}
    runs = {name: [play_order(prior, pooled, outcomes, seed, *how) for seed in range(ORDERS)]
            for name, how in variants.items()}
    table = []
    for step in range(len(next(iter(runs.values()))[0])):
        row = {"reviewed": runs["random, reviewed only"][0][step]["reviewed"]}
        for name, splits in runs.items():
            values = [split[step]["held_out"] for split in splits]
            row[name] = {key: (float(np.nanmean([v[key] for v in values])), float(np.nanstd([v[key] for v in values])))
                         for key in ("region_ece", "task_ece", "accepted_95_caught")}
        table.append(row)
    return table


def order_lines(table: list[dict], name: str) -> list[str]:
    variants = [key for key in table[0] if key != "reviewed"]
    lines = [f"### review order, {name} labels (held-out {HELD_OUT:.0%}, mean ± sd over {ORDERS} splits)", "",
             "| reviewed | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants),
             "| | " + " | ".join("region ECE / task ECE / accepted" for _ in variants) + " |"]
    for row in table:
        cells = [f"{row[v]['region_ece'][0]:.3f} / {row[v]['task_ece'][0]:.3f} / "
                 f"{row[v]['accepted_95_caught'][0]:.0%} (±{row[v]['accepted_95_caught'][1]:.0%})" for v in variants]
        lines.append(f"| {row['reviewed']} | " + " | ".join(cells) + " |")
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("review_loop")))
    args = parser.parse_args()
    pipeline = Pipeline.load("yolo", calibration=None)
    with progress.enabled():
        train, val = _records(pipeline, "coco-train209"), _records(pipeline, "coco-val100")
    markdown = []
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"orders": ORDERS, "batch": BATCH, "refit_every": REFIT_EVERY, "accept_at": ACCEPT_AT, "label_sets": {}}
    for name, labels in (("all", None), ("traffic", set(TRAFFIC_LABELS))):
        prior = fit(train, labels, pipeline.version, pipeline.display_threshold, {"data": "coco-train209"})
        ordered = sorted(val, key=lambda r: r.image_id)
        pooled, outcomes = [judge(r, None) for r in ordered], [judge(r, labels) for r in ordered]
        table = _table([play(prior, pooled, outcomes, seed) for seed in range(ORDERS)])
        report["label_sets"][name] = table
        lines = [f"### {name} labels", "",
                 "| reviewed | unreviewed | region ECE: start / refitted | task ECE: start / refitted | "
                 "accepted at 95 % caught: start / refitted | "
                 f"bulk accept at ≥ {ACCEPT_AT}: share, error (start) | same, refitted |",
                 "|---|---|---|---|---|---|---|"]
        for row in table:
            start, now = row["prior"], row["refitted"]
            lines.append(f"| {row['reviewed']} | {row['unreviewed']} | {start['region_ece']:.3f} / "
                         f"{now['region_ece']:.3f} | {start['task_ece']:.3f} / {now['task_ece']:.3f} | "
                         f"{start['accepted_95_caught']:.0%} / {now['accepted_95_caught']:.0%} | "
                         f"{start['bulk_share']:.0%}, {_error(start)} | {now['bulk_share']:.0%}, {_error(now)} |")
        markdown.extend(lines + [""])
        _figure(table, out / f"review_loop-{name}.png", name)
        orders = order_table(prior, pooled, outcomes)
        report.setdefault("review_order", {})[name] = orders
        markdown.extend(order_lines(orders, name))
        _order_figure(orders, out / f"review_order-{name}.png", name)
    (out / "review_loop.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "review_loop.md").write_text("\n".join(markdown))
    print("\n".join(markdown))
    return 0


def _table(runs: list[list[dict]]) -> list[dict]:
    """Per refit step, the mean over review orders; the bulk error pooled over them."""
    table = []
    for step in range(len(runs[0])):
        row = {"reviewed": runs[0][step]["reviewed"], "unreviewed": runs[0][step]["refitted"]["tasks"]}
        for side in ("prior", "refitted"):
            values = [run[step][side] for run in runs]
            errors, count = sum(v["bulk_errors"] for v in values), sum(v["bulk_count"] for v in values)
            row[side] = {key: float(np.nanmean([v[key] for v in values]))
                         for key in ("region_ece", "task_ece", "accepted_95_caught", "bulk_share")}
            row[side].update(bulk_error=errors / count if count else None, bulk_count=count)
        table.append(row)
    return table


def _error(side: dict) -> str:
    return "-" if side["bulk_error"] is None else f"{side['bulk_error']:.1%} of {side['bulk_count']}"


def _figure(table, path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reviewed = [row["reviewed"] for row in table]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for side, style in (("prior", "--"), ("refitted", "-")):
        legend = "start (coco-train209), never refitted" if side == "prior" else f"refitted every {REFIT_EVERY} reviews"
        axes[0].plot(reviewed, [row[side]["accepted_95_caught"] for row in table], style, marker="o", label=legend)
        axes[1].plot(reviewed, [row[side]["task_ece"] for row in table], style, marker="o", label=legend)
    axes[0].set(title="correct unreviewed tasks accepted\n(95 % of needing-edit caught)", xlabel="tasks reviewed",
                ylabel="share", ylim=(0, 1))
    axes[1].set(title="task ECE on the unreviewed tasks", xlabel="tasks reviewed", ylabel="ECE", ylim=(0, None))
    for axis in axes:
        axis.legend(fontsize=8)
    figure.suptitle(f"simulated review loop on coco-val100, {name} labels, mean of {ORDERS} review orders")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _order_figure(table: list[dict], path: Path, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reviewed = [row["reviewed"] for row in table]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for variant in [key for key in table[0] if key != "reviewed"]:
        style = "-" if variant.endswith("every task") else "--"
        for axis, key in zip(axes, ("task_ece", "accepted_95_caught")):
            axis.plot(reviewed, [row[variant][key][0] for row in table], style, marker="o", label=variant)
    axes[0].set(title="task ECE on held-out tasks", xlabel="tasks reviewed", ylabel="ECE", ylim=(0, None))
    axes[1].set(title="held-out correct tasks accepted\n(95 % of needing-edit caught)", xlabel="tasks reviewed",
                ylabel="share", ylim=(0, 1))
    for axis in axes:
        axis.legend(fontsize=8, title="review order, prior over", title_fontsize=8)
    figure.suptitle(f"review order on coco-val100, {name} labels, mean of {ORDERS} held-out splits")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
