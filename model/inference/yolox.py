"""YOLOX (Apache-2.0 upstream weights) from an ONNX export through onnxruntime.

The export takes a letterboxed BGR 0-255 image (416x416 for nano) and outputs, per anchor point of
the stride-8/16/32 grids, raw (cx, cy, log w, log h) in grid units, objectness and 80 class
probabilities; decoding the grid and per-class NMS happen here.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from openautoglm.converters import Region
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.detections import class_aware_nms, detections_to_regions
from openautoglm.model.inference.interface import ProposerSpec
from openautoglm.model.inference.labels import LabelMap, merge_synonyms
from openautoglm.model.inference.ultralytics_yolo import weights_version

COCO_NAMES = (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign "
    "parking_meter bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie "
    "suitcase frisbee skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard "
    "tennis_racket bottle wine_glass cup fork knife spoon bowl banana apple sandwich orange broccoli carrot "
    "hot_dog pizza donut cake chair couch potted_plant bed dining_table toilet tv laptop mouse remote keyboard "
    "cell_phone microwave oven toaster sink refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).replace("_", "\0").split()
COCO_NAMES = tuple(name.replace("\0", " ") for name in COCO_NAMES)
STRIDES = (8, 16, 32)


class YoloxProposer:
    def __init__(self, name: str, weights: str, conf: float = 0.25, iou: float = 0.45, names=COCO_NAMES,
                 synonyms: dict | None = None, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError as error:
            raise ModelError("onnxruntime is not installed: pip install 'openautoglm[model]'") from error
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(weights, options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ModelError(f"cannot load YOLOX ONNX {weights!r}: {error}") from error
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        self.size = int(model_input.shape[2]), int(model_input.shape[3])
        self.grid, self.grid_strides = _grids(self.size)
        self.conf, self.iou, self.synonyms = conf, iou, synonyms or {}
        self.spec = ProposerSpec(name, weights_version(weights), "yolox", tuple(names))

    def propose(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict | None = None) -> list[list[Region]]:
        label_map = LabelMap(labels, merge_synonyms(self.synonyms, synonyms))
        # the export has a batch size of 1
        return [detections_to_regions(self.raw(image), self.spec, label_map) for image in images]

    def raw(self, image: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bare model: letterbox, run, decode the grid, NMS -> (xyxy in image pixels, score,
        class), best first."""
        bgr = np.asarray(image.convert("RGB"))[:, :, ::-1]
        height, width = bgr.shape[:2]
        ratio = min(self.size[0] / height, self.size[1] / width)
        resized = cv2.resize(bgr, (int(width * ratio), int(height * ratio)), interpolation=cv2.INTER_LINEAR)
        padded = np.full((self.size[0], self.size[1], 3), 114, dtype=np.uint8)
        padded[:resized.shape[0], :resized.shape[1]] = resized
        blob = padded.transpose(2, 0, 1)[None].astype(np.float32)
        raw = self.session.run(None, {self.input_name: blob})[0][0]
        centres = (raw[:, :2] + self.grid) * self.grid_strides
        sizes = np.exp(raw[:, 2:4]) * self.grid_strides
        xyxy = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1) / ratio
        scores_all = raw[:, 4:5] * raw[:, 5:]
        classes = scores_all.argmax(axis=1)
        scores = scores_all[np.arange(len(classes)), classes]
        keep = scores >= self.conf
        xyxy, scores, classes = xyxy[keep], scores[keep], classes[keep]
        chosen = class_aware_nms(xyxy, scores, classes, self.iou)
        return np.clip(xyxy[chosen], 0, [width, height, width, height]), scores[chosen], classes[chosen]


def _grids(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for stride in STRIDES:
        rows, cols = size[0] // stride, size[1] // stride
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        strides.append(np.full((rows * cols, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)
