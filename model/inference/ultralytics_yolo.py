"""Closed-set YOLO through ultralytics: any .pt / .onnx / .tflite / .engine file or model name."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from openautoglm.converters import Box, Mask, Region, Shape
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.device import pick_device
from openautoglm.model.inference.interface import ProposerSpec
from openautoglm.model.inference.labels import LabelMap, merge_synonyms


def weights_version(path: str) -> str:
    """First 12 hex digits of the weights' sha256 (a name when the weights are downloaded)."""
    file = Path(path)
    if not file.is_file():
        return Path(path).stem
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


class UltralyticsProposer:
    def __init__(self, name: str, weights: str, conf: float = 0.25, iou: float = 0.7, imgsz: int = 640,
                 device: str | None = None, synonyms: dict | None = None):
        # never pip-install at run time (ultralytics' default), least of all inside a server
        os.environ.setdefault("YOLO_AUTOINSTALL", "false")
        try:
            from ultralytics import YOLO
        except ImportError as error:
            raise ModelError("ultralytics is not installed: pip install 'openautoglm[model]'") from error
        task = "detect" if Path(weights).suffix in (".tflite", ".onnx", ".engine") else None
        try:
            self.model = YOLO(weights, task=task)
        except Exception as error:  # ultralytics raises many types; the message is what matters
            raise ModelError(f"cannot load YOLO weights {weights!r}: {error}") from error
        self.device = pick_device(device)
        self.conf, self.iou, self.imgsz, self.synonyms = conf, iou, imgsz, synonyms or {}
        names = self.model.names if isinstance(self.model.names, dict) else dict(enumerate(self.model.names))
        self.spec = ProposerSpec(name, weights_version(weights), "ultralytics", tuple(names[i] for i in sorted(names)))

    def propose(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict | None = None) -> list[list[Region]]:
        label_map = LabelMap(labels, merge_synonyms(self.synonyms, synonyms))
        return [self._regions(result, label_map) for result in self.raw(images)]

    def raw(self, images: Sequence[Image.Image]) -> list:
        """The bare ultralytics call (PIL images are converted by ultralytics itself)."""
        return self.model.predict(list(images), conf=self.conf, iou=self.iou, imgsz=self.imgsz, device=self.device,
                                  verbose=False)

    def _regions(self, result, label_map: LabelMap) -> list[Region]:
        regions = []
        boxes = result.boxes
        masks = result.masks.data.cpu().numpy() if result.masks is not None else None
        height, width = result.orig_shape
        for index, (xyxy, score, cls) in enumerate(zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())):
            label = label_map.to_project(self.spec.vocabulary[int(cls)])
            if label is None:
                continue
            x1, y1, x2, y2 = (float(np.clip(v, 0, limit)) for v, limit in zip(xyxy, (width, height, width, height)))
            mask = None
            if masks is not None:
                bitmap = np.asarray(Image.fromarray(masks[index] > 0.5).resize((width, height)))
                mask = Mask.from_array(bitmap)
            regions.append(Region(label, Shape.MASK if mask else Shape.BOX, Box(x1, y1, x2, y2), mask=mask,
                                  score=float(score), source=self.spec.source))
        return regions
