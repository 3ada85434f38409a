"""class_aware_nms decides every overlap as ultralytics' torchvision NMS does, including the
borderline ones that float32 rounding of class-shifted boxes tips either way."""

from __future__ import annotations

import numpy as np
import pytest

from openautoglm.model.inference.detections import CLASS_OFFSET, class_aware_nms


def _torchvision_keep(xyxy: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> list[int]:
    """ultralytics' own NMS call: boxes shifted by class x max_wh, torchvision.ops.nms."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    boxes = torch.from_numpy(xyxy) + torch.from_numpy(classes.astype(np.float32))[:, None] * CLASS_OFFSET
    return torchvision.ops.nms(boxes, torch.from_numpy(scores), iou).tolist()


def _borderline_cluster(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A few jittered copies of one box (IoUs around 0.7), one class, distinct scores."""
    count = int(rng.integers(2, 12))
    corner, size = rng.uniform(0, 600, size=(1, 2)), rng.uniform(5, 60, size=(1, 2))
    top_left = corner + rng.normal(0, 0.12, size=(count, 2)) * size
    xyxy = np.concatenate([top_left, top_left + size * (1 + rng.normal(0, 0.05, size=(count, 2)))], axis=1)
    scores = (rng.permutation(count) / count + 0.01).astype(np.float32)
    return xyxy.astype(np.float32), scores, np.full(count, rng.integers(0, 80))


def test_borderline_overlaps_are_decided_as_torchvision_decides_them() -> None:
    rng = np.random.default_rng(7)
    for case in range(2000):
        xyxy, scores, classes = _borderline_cluster(rng)
        want = _torchvision_keep(xyxy, scores, classes, 0.7)
        assert class_aware_nms(xyxy, scores, classes, 0.7).tolist() == want, case


def test_several_classes_are_suppressed_apart_and_returned_best_first() -> None:
    xyxy = np.array([[10, 10, 50, 50], [11, 11, 51, 51], [10, 10, 50, 50], [200, 200, 240, 240]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.95, 0.3], dtype=np.float32)
    classes = np.array([1, 1, 2, 1])
    assert class_aware_nms(xyxy, scores, classes, 0.7).tolist() == [2, 0, 3]
    assert class_aware_nms(xyxy, scores, classes, 0.7, max_detections=2).tolist() == [2, 0]
    assert class_aware_nms(xyxy, scores, classes, 0.7).tolist() == _torchvision_keep(xyxy, scores, classes, 0.7)


def test_equal_scores_are_taken_in_input_order() -> None:
    """torch's sort is unstable (its order of ties can change with the CPU); ours is not."""
    xyxy = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.full(3, 0.5, dtype=np.float32)
    assert class_aware_nms(xyxy, scores, np.zeros(3, dtype=int), 0.5).tolist() == [0]
    assert class_aware_nms(xyxy[::-1].copy(), scores, np.array([1, 0, 0]), 0.5).tolist() == [0, 1]


def test_boxes_beyond_the_class_shift_stay_apart() -> None:
    """Image-space boxes (YOLOX, zero-shot) can be wider than 7680 px: classes must still not meet."""
    xyxy = np.array([[0, 0, 40000, 100], [0, 0, 40000, 100]], dtype=np.float32)  # IoU 0.68 if shifted by 7680
    assert sorted(class_aware_nms(xyxy, np.array([0.9, 0.8], dtype=np.float32), np.array([0, 1]), 0.5)) == [0, 1]


def test_no_boxes() -> None:
    empty = np.zeros((0, 4), dtype=np.float32)
    assert class_aware_nms(empty, np.zeros(0), np.zeros(0, dtype=int), 0.5).tolist() == []
