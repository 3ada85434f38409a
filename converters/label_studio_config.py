"""A Label Studio labelling config: each Image tag's region controls and their labels (what to
predict), and regions encoded as results for those controls (the backend's answers, and
`predict --format label-studio --label-config`)."""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from .geometry import mask_outline
from .label_studio import dump_region
from .types import Box, Mask, Region, Shape

log = logging.getLogger(__name__)
SUPPORTED = ("rectanglelabels", "polygonlabels", "brushlabels", "keypointlabels")


class LabelConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    control: str  # from_name
    kind: str  # one of SUPPORTED
    image: str  # to_name
    data_key: str  # the task data field holding the image URL ($image -> "image")
    labels: dict[str, list[str]]  # label as written in results -> other names a model may use for it


@functools.lru_cache(maxsize=16)  # a project sends the same config with every /predict
def parse(label_config: str) -> tuple[Target, ...]:
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as error:
        raise LabelConfigError(f"label config is not valid XML: {error}") from None
    images = {el.get("name"): (el.get("value") or "").lstrip("$") for el in root.iter() if el.tag.lower() == "image"}
    targets = []
    for element in root.iter():
        kind = element.tag.lower()
        if not kind.endswith("labels") and kind not in ("choices", "textarea", "rating"):
            continue
        name, to_name = element.get("name"), (element.get("toName") or "").split(",")[0]
        if kind not in SUPPORTED or to_name not in images:
            log.info("skipping control %r (%s): openautoglm does not predict it", name, element.tag)
            continue
        labels: dict[str, list[str]] = {}
        for label in element.iter("Label"):
            written = label.get("alias") or label.get("value")
            if written:
                others = [label.get("value")] + (label.get("predicted_values") or "").split(",")
                labels[written] = [o.strip() for o in others if o and o.strip() and o.strip() != written]
        targets.append(Target(name, kind, to_name, images[to_name], labels))
    return tuple(targets)


def encode_regions(regions: list[Region], targets: tuple[Target, ...], width: int, height: int,
                   task_id: object) -> list[dict]:
    """Each region as results of every control whose labels hold its label, in that control's
    shape; result ids are "<task>-<region number>-<control>" (re-scoring finds a region by them)."""
    results = []
    for number, region in enumerate(regions):
        for target in targets:
            if region.label not in target.labels:
                continue
            shaped = as_kind(region, target.kind, width, height)
            results += dump_region(shaped, width, height, f"{task_id}-{number}-{target.control}", target.control,
                                   target.image)
    return results


def as_kind(region: Region, kind: str, width: int, height: int) -> Region:
    """The region in the shape the control draws."""
    if kind == "rectanglelabels" and region.shape is Shape.BOX:
        return region  # already drawable (most detections): no copy to build and validate
    replace = dict(label=region.label, score=region.score, calibrated_score=region.calibrated_score,
                   source=region.source, id=region.id)
    if kind == "rectanglelabels":
        return Region(shape=Shape.BOX, box=region.box, **replace)
    if kind == "brushlabels":
        return Region(shape=Shape.MASK, mask=region.mask or box_mask(region.box, width, height), **replace)
    if kind == "polygonlabels":
        ring = mask_outline(region.mask) if region.mask is not None else None
        ring = region.box.corners() if ring is None else ring
        return Region(shape=Shape.POLYGON, points=(tuple(map(tuple, ring)),), **replace)
    cx, cy = region.box.center  # keypointlabels
    return Region(shape=Shape.POINTS, points=(((cx, cy),),), **replace)



def box_mask(box: Box, width: int, height: int) -> Mask:
    """A box-shaped mask, for brush controls when the pipeline has no segmenter."""
    bitmap = np.zeros((height, width), dtype=bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box.bounds())
    bitmap[max(0, y1):max(y1 + 1, y2), max(0, x1):max(x1 + 1, x2)] = True
    return Mask.from_array(bitmap)
