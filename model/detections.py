"""What the proposers that decode raw closed-set detector outputs (YOLOX, LiteRT YOLO) share:
class-aware non-maximum suppression, and kept detections -> canonical Regions."""

from __future__ import annotations

import cv2
import numpy as np

from openautoglm.converters import Box, Region

from .interface import ProposerSpec
from .labels import LabelMap


def class_aware_nms(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float,
                    max_detections: int | None = None) -> np.ndarray:
    """Indices of the boxes kept, best score first: within one class, a box overlapping a better
    one by IoU > `iou` is dropped (torchvision.ops.nms semantics, through OpenCV's batched NMS)."""
    if len(scores) == 0:
        return np.zeros(0, dtype=int)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    chosen = cv2.dnn.NMSBoxesBatched(xywh.tolist(), np.asarray(scores, dtype=float).tolist(),
                                     np.asarray(classes, dtype=int).tolist(), 0.0, iou)
    chosen = np.asarray(chosen, dtype=int).reshape(-1)
    chosen = chosen[np.argsort(-np.asarray(scores)[chosen], kind="stable")]
    return chosen[:max_detections]


def detections_to_regions(detections: tuple[np.ndarray, np.ndarray, np.ndarray], spec: ProposerSpec,
                          label_map: LabelMap) -> list[Region]:
    """(xyxy in image pixels, score, class index) rows -> Regions with project labels; classes
    the project does not ask for are dropped."""
    regions = []
    for xyxy, score, class_index in zip(*detections):
        label = label_map.to_project(spec.vocabulary[int(class_index)])
        if label is None:
            continue
        regions.append(Region(label, box=Box(*xyxy.tolist()), score=float(score), source=spec.source,
                              attributes={"signals": {"detector_score": float(score)}}))
    return regions
