"""Refitting a pipeline's calibration from the review store: what reviewers did with its
predictions, pooled with the calibration the team started from as a prior (`fit_outcomes`).
Shared by `openautoglm calibrate --store` and the server's background refit."""

from __future__ import annotations

import time
from pathlib import Path

from openautoglm.model.errors import ModelError
from openautoglm.model.reviews.store import ReviewStore
from openautoglm.model.scores.calibration import Calibration
from openautoglm.model.scores.evaluation import Outcome
from openautoglm.model.scores.fitting import fit_outcomes
from openautoglm.model.scores.scoring import ImageEvidence


def reviewed_outcomes(store: ReviewStore, pipeline_version: str) -> list[Outcome]:
    """Each reviewed task as fitting sees it: raw scores of its predicted regions, which were right,
    how many objects were missed, and its near-miss scores. None at all is an error: nothing to fit."""
    outcomes = [Outcome.of(ImageEvidence.of_scores(t["scores"], t["near_misses"], t["agreement"], t["second_misses"]),
                           t["correct"], t["missed"]) for t in store.reviewed_tasks(pipeline_version)]
    if not outcomes:
        raise ModelError(f"review store {store.name} holds no reviews of predictions by {pipeline_version}")
    return outcomes


def refit(store: ReviewStore, pipeline_version: str, display_threshold: float, prior: Calibration | None,
          out: Path | None = None, provenance: dict | None = None,
          outcomes: list[Outcome] | None = None, cascade_below: float | None = None) -> Calibration:
    """Fit on every reviewed task of these weights (`outcomes`, when the caller has read them
    already); saved atomically to `out` when given. The provenance records how many reviewed tasks
    it saw (`reviewed_tasks`), which is how the server knows how many are new since."""
    outcomes = reviewed_outcomes(store, pipeline_version) if outcomes is None else outcomes
    calibration = fit_outcomes(outcomes, outcomes, pipeline_version, display_threshold,
                               {"data": f"reviews in {store.name}", "reviewed_tasks": len(outcomes),
                                "fitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                **(provenance or {})}, prior, cascade_below)
    if out is not None:
        calibration.save(out)
    return calibration
