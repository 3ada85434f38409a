"""Per-label adjustment of the region map. One isotonic map over every label is what a hundred
reviewed images can support, but a project may draw some labels its own way (a box around a whole
bunch of bananas, where the detector boxes each one): those labels' regions are wrong far more
often than their scores say, the others' not. Each label gets a log-odds offset on the pooled map,
fitted on its own reviewed regions with a normal prior around the prior calibration's offset (0
without one), so a label with few regions stays near the pooled map and one with many follows its
own reviews. How wide that prior is, none at all included, is chosen by cross-validation on the
reviewed tasks: on COCO, where labels differ little, offsets fitted on 50 images made the held-out
regions worse as often as better, so they are used only where the held-out reviews show them
better by more than their noise."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from openautoglm.model.scores.calibration import _logit
from openautoglm.model.scores.evaluation import Outcome

PRIOR_SDS = (0.0, 0.25, 0.5, 1.0)  # the prior's standard deviations tried, in log-odds; 0: no offsets
MIN_REGIONS = 5  # a label with fewer reviewed regions keeps the prior's offset
LIMIT = 6.0  # offsets stay within +-LIMIT log-odds
FOLDS = 4


def fit_label_offsets(outcomes: Sequence[Outcome], region_x: np.ndarray, region_y: np.ndarray,
                      prior: dict[str, float] | None = None) -> dict[str, float]:
    """label -> offset (rounded to 1e-4): the prior's offsets, moved by the labels' own regions
    where cross-validation on `outcomes` chooses a prior width above 0."""
    prior = dict(prior or {})
    regions = _regions(outcomes, region_x, region_y)
    if regions is None:
        return prior
    sd = _chosen_sd(*regions, prior)
    if not sd:
        return prior
    base, right, labels, _ = regions
    offsets = {**prior, **_map_offsets(base, right, labels, prior, sd)}
    return {label: round(float(offset), 4) for label, offset in offsets.items() if round(float(offset), 4) != 0.0}


def _regions(outcomes: Sequence[Outcome], region_x, region_y):
    """(log-odds of the pooled map, right or not, label, task index) of every region whose label is known."""
    known = [(i, o) for i, o in enumerate(outcomes) if len(o.labels) == len(o.scores) and len(o.scores)]
    if not known:
        return None
    scores = np.concatenate([o.scores for _, o in known])
    right = np.concatenate([o.correct for _, o in known]).astype(float)
    labels = np.array([label if label is not None else "" for _, o in known for label in o.labels], dtype=object)
    task = np.concatenate([np.full(len(o.scores), i) for i, o in known])
    return _logit(np.interp(scores, region_x, region_y)), right, labels, task


def _map_offsets(base: np.ndarray, right: np.ndarray, labels: np.ndarray, prior: dict[str, float],
                 sd: float) -> dict[str, float]:
    """Maximum a posteriori offsets of the labels with MIN_REGIONS regions or more: Newton's method
    on each label's Bernoulli log-likelihood at base + offset plus the normal prior's log-density,
    all labels at once (the objective is strictly convex)."""
    if not len(base):
        return {}
    names, index, counts = np.unique(labels, return_inverse=True, return_counts=True)
    centre = np.array([prior.get(name, 0.0) for name in names])
    offset = centre.copy()
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(base + offset[index])))
        gradient = np.bincount(index, p - right, len(names)) + (offset - centre) / sd ** 2
        curvature = np.bincount(index, p * (1 - p), len(names)) + 1 / sd ** 2
        step = np.clip(gradient / curvature, -1.0, 1.0)
        offset = np.clip(offset - step, -LIMIT, LIMIT)
        if np.abs(step).max() < 1e-6:
            break
    return {name: value for name, value, count in zip(names, offset, counts) if name and count >= MIN_REGIONS}


def _chosen_sd(base, right, labels, task, prior: dict[str, float]) -> float:
    """The narrowest prior (0 included) whose held-out log-loss is within one standard error of the
    best one's, folds by task."""
    fold = task % FOLDS
    losses = {}
    for sd in PRIOR_SDS:
        held_out = np.zeros(len(base))
        for k in range(FOLDS):
            train, test = fold != k, fold == k
            offsets = {**prior, **(_map_offsets(base[train], right[train], labels[train], prior, sd) if sd else {})}
            t = base[test] + np.array([offsets.get(label, 0.0) for label in labels[test]])
            held_out[test] = right[test] * np.logaddexp(0, -t) + (1 - right[test]) * np.logaddexp(0, t)
        losses[sd] = held_out
    best = min(losses, key=lambda sd: losses[sd].mean())
    margin = losses[best].std(ddof=1) / np.sqrt(len(base)) if len(base) > 1 else 0.0
    return min(sd for sd, values in losses.items() if values.mean() <= losses[best].mean() + margin)
