"""`openautoglm report --store`: how the scores held up against what reviewers did: reviewed tasks,
edit rate by score band, calibration error on the latest reviews (drift), and the measured error of
the tasks a team would accept above a score, with a 95 % interval."""

from __future__ import annotations

import math
import sys

import numpy as np

from openautoglm.model.evaluation import ece

BANDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0001)


def wilson_interval(errors: int, count: int, z: float = 1.96) -> tuple[float, float]:
    """95 % interval of a proportion; sound where few errors are seen (an audit of a few dozen tasks)."""
    if count == 0:
        return float("nan"), float("nan")
    p = errors / count
    centre = (p + z * z / (2 * count)) / (1 + z * z / count)
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / (1 + z * z / count)
    return max(0.0, centre - half), min(1.0, centre + half)


def summary(tasks: list[dict], accept_above: float | None = None, latest: int = 200) -> dict:
    scored = [t for t in tasks if t["task_score"] is not None]
    needs_edit = np.array([bool(t["missed"]) or not all(t["correct"]) for t in scored])
    task_scores = np.array([t["task_score"] for t in scored])
    bands = []
    for low, high in zip(BANDS, BANDS[1:]):
        members = (task_scores >= low) & (task_scores < high)
        bands.append({"band": f"{low:.1f}-{min(high, 1.0):.1f}", "tasks": int(members.sum()),
                      "edit_rate": float(needs_edit[members].mean()) if members.any() else None})
    recent = scored[-latest:]
    region_p = [s for t in recent for s in t["shown_scores"]]
    region_ok = [c for t in recent for c in t["correct"]]
    result = {"reviewed_tasks": len(tasks), "with_task_score": len(scored), "bands": bands,
              "latest": len(recent), "latest_region_ece": ece(region_p, region_ok),
              "latest_task_ece": ece([t["task_score"] for t in recent],
                                     [not (t["missed"] or not all(t["correct"])) for t in recent])}
    audit = [edit for t, edit in zip(scored, needs_edit) if t.get("audited")]
    if audit:  # the tasks above the accept threshold held back for review: the accepted tasks' error
        result["audit"] = {"tasks": len(audit), "measured_error": float(np.mean(audit)),
                           "error_interval_95": wilson_interval(int(np.sum(audit)), len(audit))}
    if accept_above is not None:
        accepted = task_scores >= accept_above
        errors, count = int(needs_edit[accepted].sum()), int(accepted.sum())
        result["accept_above"] = {"threshold": accept_above, "tasks": count,
                                  "share": float(accepted.mean()) if len(scored) else None,
                                  "measured_error": errors / count if count else None,
                                  "error_interval_95": wilson_interval(errors, count)}
    return result


def run_report(args) -> int:
    from openautoglm.model.review_store import open_store

    report = summary(open_store(args.store).reviewed_tasks(), args.accept_above)
    print(f"reviewed tasks: {report['reviewed_tasks']} ({report['with_task_score']} with a stored task score)")
    print("task score band  tasks  needed an edit")
    for band in report["bands"]:
        rate = "-" if band["edit_rate"] is None else f"{band['edit_rate']:.0%}"
        print(f"{band['band']:<15}  {band['tasks']:>5}  {rate:>14}")
    print(f"latest {report['latest']} tasks: region ECE {report['latest_region_ece']:.3f}, "
          f"task ECE {report['latest_task_ece']:.3f} (drift: compare with the calibration's own figures)")
    if "audit" in report:
        audit = report["audit"]
        low, high = audit["error_interval_95"]
        print(f"audit sample (tasks above OPENAUTOGLM_ACCEPT_ABOVE held back for review): {audit['tasks']} reviewed, "
              f"needed an edit {audit['measured_error']:.1%} (95 % interval {low:.1%}-{high:.1%}): the error of "
              "what is accepted unreviewed")
    if "accept_above" in report:
        accept = report["accept_above"]
        low, high = accept["error_interval_95"]
        error = "-" if accept["measured_error"] is None else f"{accept['measured_error']:.1%}"
        print(f"tasks scored >= {accept['threshold']}: {accept['tasks']} reviewed, needed an edit {error} "
              f"(95 % interval {low:.1%}-{high:.1%})", file=sys.stdout)
    return 0
