"""Refitting a pipeline's calibration from the review store: what reviewers did with its
predictions, pooled with the calibration the team started from as a prior whose weight the
reviews choose (`prior_weight.fit_adaptive`). Shared by `openautoglm calibrate --store` and the
server's background refit."""

from __future__ import annotations

import time
from pathlib import Path

from openautoglm.model.errors import ModelError
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.calibration import Calibration
from openautoglm.model.scores.evaluation import Outcome
from openautoglm.model.scores.prior_weight import fit_adaptive
from openautoglm.model.scores.scoring import ImageEvidence


def reviewed_outcomes(store: ReviewStore, pipeline_version: str, project: object = None) -> list[Outcome]:
    """Each reviewed task (of `project`, or of all) as fitting sees it: raw scores of its predicted
    regions, which were right, how many objects were missed, and its near-miss scores. None at all
    is an error: nothing to fit."""
    outcomes = [Outcome.of(ImageEvidence.of_scores(t["scores"], t["near_misses"], t["agreement"], t["second_misses"],
                                                   t["labels"]),
                           t["correct"], t["missed"]) for t in store.reviewed_tasks(pipeline_version, project)]
    if not outcomes:
        where = "" if project is None else f" in project {project}"
        raise ModelError(f"review store {store.name} holds no reviews of predictions by {pipeline_version}{where}")
    return outcomes


def refit(store: ReviewStore, pipeline_version: str, display_threshold: float, prior: Calibration | None,
          out: Path | None = None, provenance: dict | None = None,
          outcomes: list[Outcome] | None = None, cascade_below: float | None = None,
          project: object = None) -> Calibration:
    """Fit on every reviewed task of these weights in `project` (all projects when None; `outcomes`,
    when the caller has read them already); saved atomically to `out` when given. The provenance
    records how many reviewed tasks it saw (`reviewed_tasks`), which is how the server knows how
    many are new since, and the project."""
    outcomes = reviewed_outcomes(store, pipeline_version, project) if outcomes is None else outcomes
    data = f"reviews in {store.name}" + ("" if project is None else f", project {project}")
    # the project's open tasks: the prior stands where no review is (lowest-first reviews cover the low scores only)
    unreviewed = store.open_evidence(pipeline_version, project) if project is not None and prior is not None else []
    calibration = fit_adaptive(outcomes, outcomes, pipeline_version, display_threshold,
                               {"data": data, "reviewed_tasks": len(outcomes),
                                **({} if project is None else {"project": str(project)}),
                                "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                "unreviewed_tasks": len(unreviewed), **(provenance or {})}, prior, cascade_below,
                               unreviewed)
    if out is not None:
        calibration.save(out)
    return calibration
