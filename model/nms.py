"""Class-aware non-maximum suppression for the proposers that decode raw detector outputs."""

from __future__ import annotations

import cv2
import numpy as np


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
