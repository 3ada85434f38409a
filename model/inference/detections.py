"""What the proposers that decode raw detector outputs (YOLOX, LiteRT YOLO, zero-shot) share:
class-aware non-maximum suppression, and kept detections -> canonical Regions."""

from __future__ import annotations

import numpy as np

from openautoglm.converters import Box, Region
from openautoglm.model.inference.interface import ProposerSpec
from openautoglm.model.inference.labels import LabelMap

# ultralytics separates classes by shifting each class's boxes this far (its `max_wh`)
CLASS_OFFSET = 7680.0


def class_aware_nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float,
                    max_detections: int | None = None) -> np.ndarray:
    """Indices of the boxes kept, best score first: a box overlapping a better one of its class by
    IoU > `iou` is dropped.

    The arithmetic is that of ultralytics' NMS (torchvision.ops.nms on float32 boxes shifted by
    class x 7680), operation for operation, so borderline overlaps are decided as ultralytics
    decides them: the shift alone rounds a class-73 box to 1/16 px, enough to move an IoU of 0.7
    either way. Equal scores are taken in input order; torch's unstable sort can order them
    differently from one CPU to another, so that order is the one thing not reproduced."""
    if len(scores) == 0:
        return np.zeros(0, dtype=int)
    boxes = np.asarray(xyxy, dtype=np.float32)
    scores = np.asarray(scores, dtype=np.float32)
    classes = np.asarray(classes, dtype=np.int64)
    offset = np.float32(max(CLASS_OFFSET, float(np.ceil(np.abs(boxes).max())) + 1))  # classes never overlap
    boxes = boxes + (classes.astype(np.float32) * offset)[:, None]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-scores, kind="stable")
    kept = np.zeros(len(scores), dtype=bool)
    # boxes of different classes never overlap after the shift, so each class is suppressed alone
    for members in (order[classes[order] == c] for c in np.unique(classes)):
        suppressed = np.zeros(len(members), dtype=bool)
        candidates, candidate_areas = boxes[members], areas[members]
        for k in range(len(members)):
            if suppressed[k]:
                continue
            kept[members[k]] = True
            box, rest = candidates[k], candidates[k + 1:]
            width = np.maximum(np.float32(0), np.minimum(box[2], rest[:, 2]) - np.maximum(box[0], rest[:, 0]))
            height = np.maximum(np.float32(0), np.minimum(box[3], rest[:, 3]) - np.maximum(box[1], rest[:, 1]))
            inter = width * height
            with np.errstate(divide="ignore", invalid="ignore"):  # two empty boxes: NaN, never suppressed
                overlap = inter / (candidate_areas[k] + candidate_areas[k + 1:] - inter)
            # torchvision compares the float32 IoU with the threshold as a double
            suppressed[k + 1:] |= overlap.astype(np.float64) > float(iou)
    return order[kept[order]][:max_detections]


def detections_to_regions(detections: tuple[np.ndarray, np.ndarray, np.ndarray], spec: ProposerSpec,
                          label_map: LabelMap, display_threshold: float | None = None) -> list[Region]:
    """(xyxy in image pixels, score, class index) rows -> Regions with project labels; classes
    the project does not ask for are dropped. Rows scored at or below `display_threshold` are
    marked `near_miss`: evidence for the task score, never shown."""
    regions = []
    for xyxy, score, class_index in zip(*detections):
        label = label_map.to_project(spec.vocabulary[int(class_index)])
        if label is None:
            continue
        attributes = {"near_miss": True} if display_threshold is not None and score <= display_threshold else {}
        regions.append(Region(label, box=Box(*xyxy.tolist()), score=float(score), source=spec.source,
                              attributes=attributes))
    return regions
