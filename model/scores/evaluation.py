"""How right the scores are, measured against ground truth with the definitions every figure uses:

- a region is correct when it matches a not-yet-matched ground-truth object of its label with
  IoU >= 0.5, greedily from the highest score down; a task needs an edit when any region is wrong
  or any non-crowd object of the project's labels is unmatched;
- ECE: 10 equal-width bins, weighted by count (regions shown; tasks, for "needs no edit");
- review curve: a reviewer reviews every item scored at or below a threshold (ties together), the
  lowest threshold that catches 95 % of the wrong items; reported: share reviewed, the oracle's
  floor (0.95 x wrong share) and the share of correct items left unreviewed ("accepted").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openautoglm.converters import Box
from openautoglm.converters.geometry import box_iou
from openautoglm.model.scores.scoring import ImageEvidence

MATCH_IOU = 0.5
CATCH = 0.95
TRAFFIC_LABELS = ("person", "bicycle", "car", "motorcycle", "bus", "truck", "traffic light")


@dataclass
class Detection:
    label: str
    score: float  # the detector's raw score
    box: tuple[float, float, float, float]
    agreement: float | None = None  # a cascade's second stage's score on it (cascade.evidence)


@dataclass
class ImageRecord:
    """One image's raw pipeline output and truth: everything fitting and evaluating need."""
    image_id: int
    file_name: str
    shown: list[Detection]
    near_misses: list[Detection]  # below the display threshold, not a shown box again
    truths: list[tuple[str, tuple[float, float, float, float], bool]]  # label, xyxy, crowd
    second_misses: list[Detection] | None = None  # what a cascade's second stage found uncovered; None: not run
    seconds: float = 0.0  # the first stage's time on this image
    second_seconds: float = 0.0  # the second stage's


@dataclass
class Outcome:
    """An image's regions judged for one label set."""
    scores: np.ndarray  # raw scores of the shown regions of those labels
    correct: np.ndarray
    near_miss_scores: list[float]
    missed: int
    agreement: np.ndarray | None = None  # per region, when a cascade's second stage looked at the image
    second_misses: list[float] | None = None
    labels: tuple[str | None, ...] = ()  # per region, where known (a calibration's per-label offsets)

    @classmethod
    def of(cls, evidence: ImageEvidence, correct, missed: int) -> "Outcome":
        looked = evidence.second_misses is not None
        return cls(np.array(evidence.raw_scores, dtype=float), np.array(correct, dtype=bool),
                   list(evidence.near_misses),
                   missed, np.array(evidence.agreement, dtype=float) if looked else None,
                   list(evidence.second_misses) if looked else None, tuple(evidence.labels))

    @property
    def evidence(self) -> ImageEvidence:
        return ImageEvidence.of_scores(self.scores, self.near_miss_scores, self.agreement, self.second_misses,
                                       self.labels or None)

    @property
    def needs_edit(self) -> bool:
        return task_needs_edit(self.missed, self.correct)


def task_needs_edit(missed: int, correct) -> bool:
    """The definition every figure uses: an object was missed, or a region is wrong."""
    return bool(missed) or not all(correct)


def greedy_match(predicted: list[tuple[str, Box]], truths: list[tuple[str, Box]]) -> list[int | None]:
    """For each predicted (label, box), in the order given (highest score first), the index of the
    not-yet-matched truth of its label it overlaps most with IoU >= MATCH_IOU, else None: the
    matching every figure and every stored review uses (COCO evaluation's greedy rule)."""
    used: set[int] = set()
    matches: list[int | None] = []
    for label, box in predicted:
        best, best_iou = None, MATCH_IOU
        for index, (truth_label, truth) in enumerate(truths):
            if index in used or truth_label != label:
                continue
            overlap = box_iou(box, truth)
            if overlap >= best_iou:
                best, best_iou = index, overlap
        if best is not None:
            used.add(best)
        matches.append(best)
    return matches


def judge(record: ImageRecord, labels: set[str] | None) -> Outcome:
    keep = (lambda label: True) if labels is None else (lambda label: label in labels)
    shown = sorted((d for d in record.shown if keep(d.label)), key=lambda d: -d.score)
    truths = [(label, Box(*xyxy)) for label, xyxy, crowd in record.truths if keep(label) and not crowd]
    matches = greedy_match([(d.label, Box(*d.box)) for d in shown], truths)
    near = [d.score for d in record.near_misses if keep(d.label)]
    looked = record.second_misses is not None
    matched = sum(m is not None for m in matches)
    correct = np.array([m is not None for m in matches], dtype=bool)
    return Outcome(np.array([d.score for d in shown], dtype=float), correct, near, len(truths) - matched,
                   np.array([d.agreement for d in shown], dtype=float) if looked else None,
                   [d.score for d in record.second_misses if keep(d.label)] if looked else None,
                   tuple(d.label for d in shown))


def ece(probabilities, outcomes, bins: int = 10) -> float:
    probabilities, outcomes = np.asarray(probabilities, dtype=float), np.asarray(outcomes, dtype=float)
    if probabilities.size == 0:
        return float("nan")
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.sum() * abs(probabilities[members].mean() - outcomes[members].mean())
    return float(total / probabilities.size)


def ece_floor(probabilities, rounds: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The ECE a perfectly calibrated score would measure on this many items with these
    probabilities (outcomes drawn from them): median and 95th percentile. On a few hundred regions
    or fifty tasks this floor is far from zero, and a measured ECE below its 95th percentile is as
    good as a perfect calibration can be shown to be on that data."""
    probabilities = np.asarray(probabilities, dtype=float)
    if probabilities.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    samples = [ece(probabilities, rng.random(probabilities.size) < probabilities) for _ in range(rounds)]
    return float(np.median(samples)), float(np.percentile(samples, 95))


def auroc_wrong(scores, wrong) -> float:
    """How well a low score picks out the wrong items (0.5: not at all, 1: perfectly)."""
    from sklearn.metrics import roc_auc_score

    wrong = np.asarray(wrong, dtype=bool)
    if wrong.all() or not wrong.any():
        return float("nan")
    return float(roc_auc_score(wrong, -np.asarray(scores, dtype=float)))


@dataclass
class ReviewPoint:
    threshold: float
    reviewed: float  # share of all items reviewed
    floor: float  # an oracle's share: 0.95 x the wrong share
    accepted: float  # share of the correct items left unreviewed
    curve: list[tuple[float, float]] = field(default_factory=list)  # (share reviewed, share of wrong caught)


def review(scores, wrong) -> ReviewPoint:
    scores, wrong = np.asarray(scores, dtype=float), np.asarray(wrong, dtype=bool)
    if scores.size == 0:
        return ReviewPoint(float("nan"), float("nan"), float("nan"), float("nan"))
    thresholds = np.unique(scores)  # ascending; everything at or below one is reviewed, ties together
    reviewed = np.array([(scores <= t).mean() for t in thresholds])
    caught = np.array([(wrong & (scores <= t)).sum() / max(1, wrong.sum()) for t in thresholds])
    index = int(np.argmax(caught >= CATCH)) if wrong.any() else 0
    threshold = float(thresholds[index]) if wrong.any() else float("-inf")
    correct = ~wrong
    accepted = float((correct & (scores > threshold)).sum() / correct.sum()) if correct.any() else float("nan")
    share = float((scores <= threshold).mean())
    return ReviewPoint(threshold, share, CATCH * float(wrong.mean()), accepted,
                       [(0.0, 0.0)] + list(zip(reviewed.tolist(), caught.tolist())))


def accept_threshold(scores, wrong, max_error: float = 0.02) -> dict:
    """The lowest score above which accepted items are at most `max_error` wrong."""
    scores, wrong = np.asarray(scores, dtype=float), np.asarray(wrong, dtype=bool)
    for t in np.concatenate([[-np.inf], np.unique(scores)]):
        accepted = scores > t
        if accepted.any() and wrong[accepted].mean() <= max_error:
            return {"threshold": float(t), "accepted_share": float(accepted.mean()),
                    "accepted_error": float(wrong[accepted].mean()), "accepted_count": int(accepted.sum())}
    return {"threshold": None, "accepted_share": 0.0, "accepted_error": None, "accepted_count": 0}


def bootstrap_interval(values_fn, count: int, rounds: int = 200, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of a statistic over images resampled with replacement."""
    rng = np.random.default_rng(seed)
    samples = [values_fn(rng.integers(0, count, count)) for _ in range(rounds)]
    samples = [s for s in samples if np.isfinite(s)]
    if not samples:
        return float("nan"), float("nan")
    return float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5))
