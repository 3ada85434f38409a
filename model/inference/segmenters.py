"""Boxes -> masks. SAM / SAM2 through transformers, SAM / SAM2 / MobileSAM through ultralytics,
and a weight-free GrabCut fallback used only when no segmenter weights are configured."""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from openautoglm.converters import Box, Mask
from openautoglm.converters.geometry import box_iou
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.device import pick_device


class SamSegmenter:
    """SAM (`SamModel`) or SAM2 (`Sam2Model`) prompted with boxes; the mask score is the model's
    own predicted IoU."""

    def __init__(self, name: str, weights: str, device: str | None = None):
        try:
            import torch
            from transformers import AutoModel, AutoProcessor
        except ImportError as error:
            raise ModelError("transformers and torch are needed: pip install 'openautoglm[model]'") from error
        self.torch, self.name, self.device = torch, name, pick_device(device)
        try:
            self.processor = AutoProcessor.from_pretrained(weights)
            self.model = AutoModel.from_pretrained(weights).to(self.device).eval()
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load segmenter {weights!r}: {error}") from error

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[tuple[Mask, float]]:
        if not boxes:
            return []
        image = image.convert("RGB")
        prompt = [[[b.x1, b.y1, b.x2, b.y2] for b in (box_bounds(box) for box in boxes)]]
        inputs = self.processor(images=image, input_boxes=prompt, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            outputs = self.model(**inputs, multimask_output=False)
        masks = self.processor.post_process_masks(outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(),
                                                  **_reshaped(inputs))[0]
        scores = outputs.iou_scores.float().cpu().numpy().reshape(len(boxes), -1)[:, 0]
        return [(Mask.from_array(np.asarray(mask).reshape(mask.shape[-2:]) > 0), float(np.clip(score, 0, 1)))
                for mask, score in zip(masks, scores)]


class UltralyticsSamSegmenter:
    """SAM / SAM2 / MobileSAM through ultralytics (a .pt file or download name); the mask score is
    the model's predicted IoU, clipped to [0, 1]."""

    def __init__(self, name: str, weights: str, device: str | None = None):
        os.environ.setdefault("YOLO_AUTOINSTALL", "false")  # no pip installs at run time
        try:
            from ultralytics import SAM
        except ImportError as error:
            raise ModelError("ultralytics is not installed: pip install 'openautoglm[model]'") from error
        self.name, self.device = name, pick_device(device)
        try:
            self.model = SAM(weights)
        except Exception as error:  # ultralytics raises many types; the message is what matters
            raise ModelError(f"cannot load segmenter {weights!r}: {error}") from error

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[tuple[Mask, float]]:
        if not boxes:
            return []
        prompts = [list(box.bounds()) for box in boxes]
        result = self.model.predict(image.convert("RGB"), bboxes=prompts, device=self.device, conf=0.0,
                                    verbose=False)[0]
        masks = result.masks.data.cpu().numpy() if result.masks is not None else np.zeros((0,))
        scores = result.boxes.conf.cpu().numpy() if result.boxes is not None else np.zeros((0,))
        if len(masks) != len(boxes):  # a box whose predicted IoU is not positive is dropped by ultralytics
            raise ModelError(f"{self.name}: {len(masks)} masks for {len(boxes)} boxes")
        return [(Mask.from_array(mask > 0), float(np.clip(score, 0, 1))) for mask, score in zip(masks, scores)]


def _reshaped(inputs) -> dict:
    # SAM's post-processing needs the resized size; SAM2's does not take it.
    return {"reshaped_input_sizes": inputs["reshaped_input_sizes"].cpu()} if "reshaped_input_sizes" in inputs else {}


def box_bounds(box: Box) -> Box:
    return Box(*box.bounds())


class GrabCutSegmenter:
    """Weight-free fallback (OpenCV GrabCut initialised with the box). Its score is a real but
    weak signal: how well the mask's own bounding box agrees (IoU) with the prompt box."""

    name = "grabcut (weight-free fallback)"

    def __init__(self, iterations: int = 3):
        self.iterations = iterations

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[tuple[Mask, float]]:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        height, width = bgr.shape[:2]
        results = []
        for box in boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in box.bounds())
            x1, y1 = max(0, x1), max(0, y1)
            x2, y2 = min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
            bitmap = np.zeros((height, width), dtype=bool)
            if x2 - x1 >= 2 and y2 - y1 >= 2:
                labels = np.zeros((height, width), dtype=np.uint8)
                background, foreground = np.zeros((1, 65)), np.zeros((1, 65))
                # GrabCut's k-means draws from the thread's OpenCV RNG, whose state moves with every
                # call: seeded, the same image and box give the same mask whatever ran before
                cv2.setRNGSeed(0)
                cv2.grabCut(bgr, labels, (x1, y1, x2 - x1, y2 - y1), background, foreground, self.iterations,
                            cv2.GC_INIT_WITH_RECT)
                bitmap = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
            if not bitmap.any():
                bitmap[y1:y2, x1:x2] = True  # nothing separable: the box itself, with a low score
                results.append((Mask.from_array(bitmap), 0.0))
                continue
            mask = Mask.from_array(bitmap)
            results.append((mask, box_iou(mask.bounding_box(), Box(x1, y1, x2, y2))))
        return results
