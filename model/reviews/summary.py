"""How the scores held up against what reviewers did, from the review store: edit rate by score
band, calibration error on the latest reviews (drift), and the measured error of the tasks a team
accepts, with a 95 % interval. Shared by `openautoglm report` and the server's /metrics."""

from __future__ import annotations

import math

import numpy as np

from openautoglm.model.scores.evaluation import ece, task_needs_edit

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
    needs_edit = np.array([task_needs_edit(t["missed"], t["correct"]) for t in scored], dtype=bool)
    task_scores = np.array([t["task_score"] for t in scored], dtype=float)
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
              "latest_task_ece": ece(task_scores[-latest:], ~needs_edit[-latest:])}
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
