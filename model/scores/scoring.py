"""Scores users see: a region's probability of being right and an image's probability of needing
no edit, from a calibration when there is one, else the detector's raw scores.

What a score is computed from is typed evidence (`ImageEvidence`), kept beside the regions and
never inside them; `score` is the one function that turns it into scores, used by the pipeline,
by fitting and by re-scoring stored predictions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

from openautoglm.converters import Region
from openautoglm.converters.geometry import box_iou

DUPLICATE_IOU = 0.5  # a candidate overlapping a shown box of its label this much is that box again, not a miss


@dataclass(frozen=True)
class RegionEvidence:
    """What one shown region's score comes from. Geometry (relative area, aspect, distance to the
    nearest border relative to the shorter side, rank by raw score, 0 = most confident) is what
    calibration research finds informative (Küppers et al. 2020); kept for fitting experiments."""
    detector_score: float
    agreement: float | None = None  # a cascade's second stage: its best score on this box (0: none); None: did not look
    mask_score: float | None = None  # the segmenter's, for a region given a mask
    relative_area: float = 0.0
    aspect: float = 0.0
    border_distance: float = 0.0
    rank: int = 0
    label: str | None = None  # what a calibration's per-label offset applies to; None where not stored


@dataclass(frozen=True)
class ImageEvidence:
    """One image's evidence: per shown region (in order), the raw scores of the candidates below the
    display threshold that no shown box covers, and what a cascade's second stage found that no
    shown region covers (None when it did not look)."""
    regions: tuple[RegionEvidence, ...] = ()
    near_misses: tuple[float, ...] = ()
    second_misses: tuple[float, ...] | None = None

    @property
    def raw_scores(self) -> list[float]:
        return [r.detector_score for r in self.regions]

    @property
    def labels(self) -> list[str | None]:
        return [r.label for r in self.regions]

    @property
    def agreement(self) -> list[float] | None:
        """Each region's agreement where a second stage looked at the image and scored every region."""
        values = [r.agreement for r in self.regions]
        return None if self.second_misses is None or None in values else values

    @classmethod
    def of_scores(cls, raw: Sequence[float], near_misses: Sequence[float] = (),
                  agreement: Sequence[float | None] | None = None,
                  second_misses: Sequence[float] | None = None,
                  labels: Sequence[str | None] | None = None) -> "ImageEvidence":
        """From stored or judged numbers (the review store, fitting). A second stage's evidence is
        kept only where it looked and every region has its agreement (rows stored before a cascade
        have none): the one rule for reading it back. `labels`: each region's, where known."""
        looked = second_misses is not None and agreement is not None and not any(a is None for a in agreement)
        regions = tuple(RegionEvidence(float(s), float(a) if looked else None, label=label)
                        for s, a, label in zip(raw, agreement if looked else [None] * len(raw),
                                               labels if labels is not None else [None] * len(raw)))
        return cls(regions, tuple(float(s) for s in near_misses),
                   tuple(float(s) for s in second_misses) if looked else None)


@dataclass
class ImagePrediction:
    regions: list[Region]  # shown; `score` the detector's, `calibrated_score` where a calibration applies
    score: float  # the image's (task's) score
    near_misses: list[Region] = field(default_factory=list)  # candidates below the display threshold, never shown
    second_misses: list[Region] | None = None  # a cascade's second stage's uncovered finds; None: it did not look
    second_stage_seconds: float = 0.0  # this image's share of the second stage's time
    evidence: ImageEvidence = field(default_factory=ImageEvidence)


def score(evidence: ImageEvidence, calibration) -> tuple[list[float], float]:
    """(each region's probability of being right, the image's of needing no edit). Without a
    calibration, the raw scores and the least confident region for the image (1.0 with none: nothing
    says how often an empty image is a miss). A calibration's cascade maps apply where the evidence
    holds a second stage's."""
    return with_second_stage(evidence, calibration, *first_stage(evidence, calibration))


def first_stage(evidence: ImageEvidence, calibration) -> tuple[list[float], float]:
    """`score` without a second stage's evidence."""
    raw = evidence.raw_scores
    if calibration is None:
        return list(raw), min(raw, default=1.0)
    probabilities = calibration.region_probability(raw, evidence.labels).tolist() if raw else []
    return probabilities, calibration.task_probability(probabilities, evidence.near_misses)


def with_second_stage(evidence: ImageEvidence, calibration, probabilities: list[float],
                      task: float) -> tuple[list[float], float]:
    """The first stage's scores moved by the calibration's cascade maps, where the evidence holds
    a second stage's; as they were otherwise."""
    agreement = evidence.agreement
    if calibration is None or calibration.cascade is None or agreement is None:
        return probabilities, task
    return calibration.cascade.apply(probabilities, task, agreement, evidence.second_misses)


def region_evidence(regions: Sequence[Region], width: int, height: int,
                    mask_scores: Sequence[float | None] | None = None) -> tuple[RegionEvidence, ...]:
    """Each shown region's evidence: its detector score, geometry and mask score."""
    order = sorted(range(len(regions)), key=lambda i: -regions[i].score)
    rank = {index: position for position, index in enumerate(order)}
    shorter = max(1, min(width, height))
    masks = list(mask_scores) if mask_scores is not None else [None] * len(regions)
    evidence = []
    for index, (region, mask_score) in enumerate(zip(regions, masks)):
        x1, y1, x2, y2 = region.box.bounds()
        evidence.append(RegionEvidence(
            float(region.score), mask_score=mask_score,
            relative_area=max(0.0, (x2 - x1) * (y2 - y1)) / max(1, width * height),
            aspect=(x2 - x1) / (y2 - y1) if y2 > y1 else 0.0,
            border_distance=max(0.0, min(x1, y1, width - x2, height - y2)) / shorter, rank=rank[index],
            label=region.label))
    return tuple(evidence)


def uncovered(near_misses: list[Region], shown: list[Region]) -> list[Region]:
    """The near misses that are not a shown box again: evidence of an object the model missed."""
    return [near for near in near_misses
            if not any(r.label == near.label and r.box is not None and box_iou(r.box, near.box) >= DUPLICATE_IOU
                       for r in shown)]


def scored_prediction(regions: list[Region], evidence: ImageEvidence, calibration, near_misses: list[Region],
                      second_misses: list[Region] | None = None) -> ImagePrediction:
    """The regions with their calibrated scores beside the detector's, and the image's score."""
    probabilities, task = score(evidence, calibration)
    if calibration is not None:
        regions = [dataclasses.replace(r, calibrated_score=p) for r, p in zip(regions, probabilities)]
    return ImagePrediction(regions, task, near_misses, second_misses, evidence=evidence)
