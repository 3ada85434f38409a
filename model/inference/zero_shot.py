"""Open-vocabulary detectors through transformers: OWLv2 / OWL-ViT and the Grounding DINO family.

Each project label (and its synonyms) is a text query. Scores are the models' own per-box,
per-query probabilities (sigmoid of the logits), taken straight from the outputs so every box gets
a score for every label; the best label wins, then per-label NMS.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from openautoglm.converters import Box, Region
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.detections import class_aware_nms
from openautoglm.model.inference.device import pick_device
from openautoglm.model.inference.interface import ProposerSpec
from openautoglm.model.inference.labels import LabelMap, merge_synonyms


class ZeroShotProposer:
    def __init__(self, name: str, weights: str, conf: float = 0.2, iou: float = 0.5, max_detections: int = 100,
                 device: str | None = None, synonyms: dict | None = None):
        try:
            import torch
            from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor
        except ImportError as error:
            raise ModelError("transformers and torch are needed: pip install 'openautoglm[model]'") from error
        self.torch = torch
        self.device = pick_device(device)
        try:
            self.processor = AutoProcessor.from_pretrained(weights)
            self.model = AutoModelForZeroShotObjectDetection.from_pretrained(weights).to(self.device).eval()
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load zero-shot detector {weights!r}: {error}") from error
        self.kind = self.model.config.model_type  # "owlv2", "owlvit", "grounding-dino", "mm-grounding-dino"
        self.conf, self.iou, self.max_detections, self.synonyms = conf, iou, max_detections, synonyms or {}
        revision = getattr(self.model.config, "_commit_hash", None) or self.kind
        self.spec = ProposerSpec(name, str(revision)[:12], "zero-shot")

    def propose(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict | None = None) -> list[list[Region]]:
        prompts = LabelMap(labels, merge_synonyms(self.synonyms, synonyms)).prompts()
        if not prompts or not images:
            return [[] for _ in images]  # an open-vocabulary model needs labels to look for
        probabilities, boxes = self.raw(images, [text for text, _ in prompts])
        return [self._regions(p, b, image.size, prompts) for p, b, image in zip(probabilities, boxes, images)]

    def raw(self, images: Sequence[Image.Image], texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The bare model: per image, (boxes x queries) probabilities and (boxes, 4) pixel xyxy."""
        images = [image.convert("RGB") for image in images]
        with self.torch.inference_mode():
            if self.kind.startswith("owl"):
                return self._owl(images, texts)
            return self._grounding_dino(images, texts)

    def _owl(self, images, texts):
        inputs = self.processor(text=[texts] * len(images), images=images, return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        probabilities = outputs.logits.sigmoid().float().cpu().numpy()  # (batch, boxes, queries)
        boxes = outputs.pred_boxes.float().cpu().numpy()  # cx, cy, w, h in 0..1
        # OWLv2 pads each image to a square at the bottom/right before resizing; OWL-ViT does not.
        scales = [(max(i.size),) * 2 if self.kind == "owlv2" else i.size for i in images]
        return probabilities, [_to_pixels(b, scale) for b, scale in zip(boxes, scales)]

    def _grounding_dino(self, images, texts):
        caption = " . ".join(texts) + " ."
        inputs = self.processor(images=images, text=[caption] * len(images), return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        token_probabilities = outputs.logits.sigmoid().float().cpu().numpy()  # (batch, queries, tokens)
        spans = _token_spans(self.processor.tokenizer, inputs["input_ids"][0].tolist(), texts)
        probabilities = np.stack([token_probabilities[:, :, span].max(axis=-1) for span in spans], axis=-1)
        boxes = outputs.pred_boxes.float().cpu().numpy()
        return probabilities, [_to_pixels(b, i.size) for b, i in zip(boxes, images)]

    def _regions(self, probabilities: np.ndarray, boxes: np.ndarray, size, prompts) -> list[Region]:
        width, height = size
        best = probabilities.argmax(axis=1)
        scores = probabilities[np.arange(len(best)), best]
        keep = np.flatnonzero(scores >= self.conf)
        boxes = np.clip(boxes[keep], 0, [width, height, width, height])
        label_index = {label: i for i, label in enumerate(dict.fromkeys(label for _, label in prompts))}
        classes = np.array([label_index[prompts[best[k]][1]] for k in keep], dtype=int)
        chosen = class_aware_nms(boxes, scores[keep], classes, self.iou, self.max_detections)
        regions = []
        for k in chosen:
            x1, y1, x2, y2 = boxes[k].tolist()
            if x2 <= x1 or y2 <= y1:
                continue
            label = prompts[best[keep[k]]][1]
            score = float(scores[keep[k]])
            regions.append(Region(label, box=Box(x1, y1, x2, y2), score=score, source=self.spec.source))
        return regions


def _to_pixels(cxcywh: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    cx, cy, w, h = cxcywh.T
    return np.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height], axis=1)


def _token_spans(tokenizer, input_ids: list[int], texts: list[str]) -> list[list[int]]:
    """Token positions of each text query inside the caption, found in order."""
    spans, cursor = [], 0
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for start in range(cursor, len(input_ids) - len(ids) + 1):
            if input_ids[start:start + len(ids)] == ids:
                spans.append(list(range(start, start + len(ids))))
                cursor = start + len(ids)
                break
        else:
            raise ModelError(f"query {text!r} is not in the tokenised caption (caption longer than the text model?)")
    return spans
