"""How much a project's prior calibration weighs against its own reviews, chosen by those reviews.

A fixed weight (PRIOR_TASKS) is right where the prior fits the project; on a new domain, where the
reviews disagree with the prior, it holds the refit near the prior for hundreds of reviews. So the
weight is chosen among a few by cross-validation on the project's reviewed tasks: the one
whose refits predict the held-out reviews best (log-loss), for the region map and the task model
apart (the map's regions are many, the tasks few). With many reviews the weight hardly matters and
the fixed one is used."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from openautoglm.model.scores.calibration import Calibration
from openautoglm.model.scores.evaluation import Outcome
from openautoglm.model.scores.fitting import PRIOR_TASKS, fit_outcomes, region_map, scored
from openautoglm.model.scores.scoring import ImageEvidence

# tasks' worth of prior tried: the task model's can fall far (a new domain moves its base rate,
# which a few dozen tasks show), the region map's less (a few reviews' regions make a noisy map)
TASK_WEIGHTS, REGION_WEIGHTS = (3, 10, 25, 50, 100), (25, 50, 100)
FOLDS = 4
CHOSEN_UP_TO = 400  # reviewed tasks; beyond, PRIOR_TASKS (at most 11 % of the weight)


def fit_adaptive(pooled: Sequence[Outcome], project: Sequence[Outcome], pipeline_version: str,
                 display_threshold: float, provenance: dict | None = None, prior: Calibration | None = None,
                 cascade_below: float | None = None, unreviewed: Sequence[ImageEvidence] = ()) -> Calibration:
    """`fitting.fit_outcomes` with the prior's weights chosen by the reviews (`pooled` and `project`
    hold the same tasks, all labels and the project's labels): first the region map's, by the held-out
    regions' log-loss, then with it the task model's, by the held-out tasks' log-loss."""
    weights: float | tuple[float, float] = PRIOR_TASKS
    losses: dict = {}
    sampled = prior is not None and _a_fair_sample(project, unreviewed, prior)
    if sampled and 2 * FOLDS <= len(project) <= CHOSEN_UP_TO:
        region = {w: _region_loss(pooled, prior, w) for w in REGION_WEIGHTS}
        region_weight = _heaviest_within_one_se(region)
        task = {w: _task_loss(pooled, project, pipeline_version, display_threshold, prior, (region_weight, w))
                for w in TASK_WEIGHTS}  # fitted on the reviewed tasks alone (fast), the prior spread over them
        weights = (region_weight, _heaviest_within_one_se(task))
        losses = {"regions": {str(w): round(float(v.mean()), 4) for w, v in region.items()},
                  "tasks": {str(w): round(float(v.mean()), 4) for w, v in task.items()}}
    about = {**(provenance or {}), **({"prior_weight_losses": losses} if losses else {}),
             **({"reviews_not_a_fair_sample": True} if prior is not None and not sampled else {})}
    return fit_outcomes(pooled, project, pipeline_version, display_threshold, about, prior, cascade_below,
                        unreviewed, prior_tasks=weights)


def _a_fair_sample(project: Sequence[Outcome], unreviewed: Sequence[ImageEvidence], prior: Calibration) -> bool:
    """Whether the reviewed tasks could be a random sample of the project, by the prior's task scores
    (two-sample Kolmogorov-Smirnov, 1 %). Reviews taken lowest score first are not: cross-validated
    on them, the prior looks wrong where it is only wrong for the low scores, so it keeps its weight."""
    from scipy.stats import ks_2samp

    if len(unreviewed) < 2 * FOLDS:
        return True

    def shown(scores, near) -> float:
        return prior.task_probability(prior.region_probability(np.asarray(scores, dtype=float)), list(near))

    reviewed = [shown(o.scores, o.near_miss_scores) for o in project]
    waiting = [shown(e.raw_scores, e.near_misses) for e in unreviewed]
    return bool(ks_2samp(reviewed, waiting).pvalue >= 0.01)


def _heaviest_within_one_se(losses: dict[float, np.ndarray]) -> float:
    """The heaviest prior whose held-out loss is within one standard error of the best one's (the
    one-standard-error rule): the prior gives way only where the reviews show it wrong, not to noise."""
    best = min(losses, key=lambda w: losses[w].mean())
    margin = losses[best].std(ddof=1) / np.sqrt(len(losses[best]))
    return max(w for w, folds in losses.items() if folds.mean() <= losses[best].mean() + margin)


def _task_loss(pooled, project, pipeline_version, display_threshold, prior,
               weights: tuple[float, float]) -> np.ndarray:
    """Log-loss of each fold's tasks under the calibration fitted on the other folds."""
    fold = np.arange(len(project)) % FOLDS  # tasks in review order: every fold spans the whole order
    tasks = []
    for k in range(FOLDS):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        calibration = fit_outcomes([pooled[i] for i in train], [project[i] for i in train], pipeline_version,
                                   display_threshold, prior=prior, prior_tasks=weights)
        values = scored([project[i] for i in test], calibration)
        tasks.append(_log_loss(values["task_p"], values["task_ok"]))
    return np.array(tasks)


def _region_loss(pooled: Sequence[Outcome], prior: Calibration, weight: float) -> np.ndarray:
    """Log-loss of each fold's regions under the region map fitted on the other folds."""
    fold = np.arange(len(pooled)) % FOLDS
    loss = []
    for k in range(FOLDS):
        x, y = region_map([o for o, f in zip(pooled, fold) if f != k], prior, prior_tasks=weight)
        test = [o for o, f in zip(pooled, fold) if f == k]
        scores = np.concatenate([o.scores for o in test] + [np.zeros(0)])
        right = np.concatenate([o.correct for o in test] + [np.zeros(0, dtype=bool)])
        loss.append(_log_loss(np.interp(scores, x, y), right))
    return np.array(loss)


def _log_loss(p: np.ndarray, right: np.ndarray) -> float:
    if not p.size:
        return 0.0
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return float(-np.mean(np.where(right, np.log(p), np.log(1 - p))))
