"""Scores users see: a region's probability of being right and an image's probability of needing
no edit, from a calibration when the pipeline has one, else the detector's raw scores."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable

from openautoglm.converters import Region
from openautoglm.converters.geometry import box_iou

DUPLICATE_IOU = 0.5  # a candidate overlapping a shown box of its label this much is that box again, not a miss


@dataclass
class ImagePrediction:
    regions: list[Region]  # shown; `score` calibrated where a calibration applies, the raw one in signals
    score: float  # the image's (task's) score
    near_misses: list[Region] = field(default_factory=list)  # candidates below the display threshold, never shown
    # a cascade's second stage looked at this image: what it found that no shown region covers
    # (each region's agreement is in its signals); None when it did not look
    second_misses: list[Region] | None = None
    second_stage_seconds: float = 0.0  # this image's share of the second stage's time


def raw_score(region: Region) -> float:
    """The detector's own score, kept in the signals once `score` is calibrated."""
    return float(region.attributes.get("signals", {}).get("detector_score", region.score))


def with_geometry(regions: list[Region], width: int, height: int) -> list[Region]:
    """The box-geometry signals calibration research finds informative (size and position carry
    signal: Küppers et al. 2020), added to each shown region's signals: relative area, aspect
    (width / height), distance to the nearest image border relative to the shorter side, and the
    region's rank by raw score in its image (0 = most confident)."""
    order = sorted(range(len(regions)), key=lambda i: -raw_score(regions[i]))
    rank = {index: position for position, index in enumerate(order)}
    shorter = max(1, min(width, height))
    geometric = []
    for index, region in enumerate(regions):
        x1, y1, x2, y2 = region.box.bounds()
        signals = {**region.attributes.get("signals", {}),
                   "relative_area": max(0.0, (x2 - x1) * (y2 - y1)) / max(1, width * height),
                   "aspect": (x2 - x1) / (y2 - y1) if y2 > y1 else 0.0,
                   "border_distance": max(0.0, min(x1, y1, width - x2, height - y2)) / shorter,
                   "rank": rank[index]}
        geometric.append(dataclasses.replace(region, attributes={**region.attributes, "signals": signals}))
    return geometric


def image_score(regions: Iterable[Region]) -> float:
    """Without a calibration: the least confident region stands for the image, so uncertain images
    sort first; an image with no regions scores 1.0, since nothing says how often that is a miss."""
    return min((r.score for r in regions if r.score is not None), default=1.0)


def uncovered(near_misses: list[Region], shown: list[Region]) -> list[Region]:
    """The near misses that are not a shown box again: evidence of an object the model missed."""
    return [near for near in near_misses
            if not any(r.label == near.label and r.box is not None and box_iou(r.box, near.box) >= DUPLICATE_IOU
                       for r in shown)]


AGREEMENT = "second_stage_agreement"  # the signal a cascade's second stage adds to each region it looked at


def score_image(regions: list[Region], near_misses: list[Region], calibration,
                second_misses: list[Region] | None = None) -> ImagePrediction:
    if calibration is None:
        return ImagePrediction(regions, image_score(regions), near_misses, second_misses)
    agreement = None if second_misses is None else [r.attributes["signals"][AGREEMENT] for r in regions]
    probabilities, task = calibration.score([raw_score(r) for r in regions], [r.score for r in near_misses],
                                            agreement, None if second_misses is None else
                                            [r.score for r in second_misses])
    calibrated = [dataclasses.replace(r, score=p, calibrated_score=p) for r, p in zip(regions, probabilities)]
    return ImagePrediction(calibrated, task, near_misses, second_misses)


def model_version(pipeline) -> str:
    """What Label Studio and CVAT are told: the pipeline's own, or `+calibration-raw` for a
    pipeline object that does not calibrate."""
    return getattr(pipeline, "model_version", None) or f"{pipeline.version}+calibration-raw"


def predict(pipeline, images, labels, synonyms=None) -> list[ImagePrediction]:
    """Scored predictions from any pipeline object: `predict` where it has one, else its proposals
    with raw scores."""
    if hasattr(pipeline, "predict"):
        return pipeline.predict(images, labels, synonyms)
    return [score_image(regions, [], None) for regions in pipeline.propose(images, labels, synonyms)]
