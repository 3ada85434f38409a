"""YOLOv8 / YOLO11 detection models exported by ultralytics to LiteRT (.tflite), run with the
LiteRT interpreter alone.

ultralytics can run these files too, but it imports torch to do so: a process that has loaded
the model through ultralytics holds 600 MB, through the interpreter alone 120 MB
(benchmarks/model_bench.py), and every server worker pays it.
What ultralytics does around the interpreter is reproduced here and checked against it box by box
(tests/model/test_real_detectors.py): centred letterbox with grey (114) padding, RGB scaled to 0-1,
boxes exported normalised to the input size, best class per anchor, class-aware NMS, at most 300
detections, boxes mapped back through the letterbox.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import weakref
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import yaml
from PIL import Image

from openautoglm.converters import Box, Region
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.detections import class_aware_nms, detections_to_regions
from openautoglm.model.inference.interface import ProposerSpec
from openautoglm.model.inference.labels import LabelMap, merge_synonyms
from openautoglm.model.inference.ultralytics_yolo import weights_version

PADDING = 114
MAX_DETECTIONS = 300


def export_metadata(weights: Path) -> dict:
    """What ultralytics wrote about an export: the metadata packed into the .tflite (a zip member,
    Python-literal or JSON text) or a metadata.yaml beside it."""
    if zipfile.is_zipfile(weights):
        with zipfile.ZipFile(weights) as packed:
            for member in packed.namelist():
                text = packed.read(member).decode("utf-8", "replace")
                for parse in (json.loads, ast.literal_eval):
                    try:
                        found = parse(text)
                    except (ValueError, SyntaxError):
                        continue
                    if isinstance(found, dict) and "names" in found:
                        return found
    beside = weights.with_name("metadata.yaml")
    if beside.is_file():
        return yaml.safe_load(beside.read_text(encoding="utf-8")) or {}
    return {}


def is_litert_detector(weights: str) -> bool:
    """A .tflite detection export this proposer can run (segmentation, pose and OBB exports go to ultralytics)."""
    path = Path(weights)
    return path.suffix == ".tflite" and path.is_file() and export_metadata(path).get("task", "detect") == "detect"


class LiteRtYoloProposer:
    def __init__(self, name: str, weights: str, conf: float = 0.25, iou: float = 0.7, threads: int | None = None,
                 synonyms: dict | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise ModelError("ai-edge-litert is not installed: pip install 'openautoglm[model]'") from error
        metadata = export_metadata(Path(weights))
        names = metadata.get("names")
        if not names:
            raise ModelError(f"{weights}: no class names in the export's metadata (or a metadata.yaml beside it)")
        names = names if isinstance(names, dict) else dict(enumerate(names))
        # one thread per worker process by default, as ultralytics does on small machines: the server
        # runs one process per core, and more threads each only fight over the same cores
        threads = threads or max(1, min(8, (os.cpu_count() or 2) - 1))
        try:
            self.interpreter = Interpreter(str(weights), num_threads=threads)
            self.interpreter.allocate_tensors()
        except Exception as error:  # LiteRT raises ValueError/RuntimeError with the reason
            raise ModelError(f"cannot load LiteRT model {weights!r}: {error}") from error
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = [int(v) for v in self.input["shape"]]
        self.channels_last = shape[-1] == 3
        self.size = (shape[1], shape[2]) if self.channels_last else (shape[2], shape[3])  # height, width
        self.conf, self.iou, self.synonyms = conf, iou, synonyms or {}
        # a pipeline sets this to keep candidates down to it as near-miss evidence (never shown);
        # NMS keeps the better box first, so the boxes above `conf` are the same either way
        self.evidence_floor: float | None = None
        # the letterbox canvas and the 0-1 blob are reused: fresh 1.2 + 4.9 MB arrays per image each
        # cost a page fault per 4 KB, more than the arithmetic (letterbox 2.0 -> 0.7 ms per image)
        self._canvas = np.empty((*self.size, 3), dtype=np.uint8)
        self._blob = np.empty((1, *self.size, 3), dtype=np.float32)
        self._output = np.empty(self.output["shape"], dtype=self.output["dtype"])
        self._remembered: list | None = None  # within `one_forward_per_image`: [(image, output, to_image)]
        self.spec = ProposerSpec(name, weights_version(weights), "ultralytics",
                                 tuple(str(names[i]) for i in sorted(names, key=int)))

    def propose(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict | None = None) -> list[list[Region]]:
        label_map = LabelMap(labels, merge_synonyms(self.synonyms, synonyms))
        # the exports have a batch size of 1
        floor = self.conf if self.evidence_floor is None else min(self.conf, self.evidence_floor)
        return [detections_to_regions(self.raw(image, floor), self.spec, label_map, self.conf) for image in images]

    def raw(self, image: Image.Image, conf: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The bare model: letterbox, run, NMS -> (xyxy in image pixels, score, class), best first;
        candidates scored above `conf` (default: the proposer's)."""
        output, to_image = self._forward(image)
        class_scores = output[4:]
        classes = class_scores.argmax(axis=0)
        scores = class_scores[classes, np.arange(len(classes))]
        keep = scores > (self.conf if conf is None else conf)
        xyxy, scores, classes = self._letterbox_boxes(output[:4, keep]), scores[keep], classes[keep]
        chosen = class_aware_nms(xyxy, scores, classes, self.iou, MAX_DETECTIONS)
        return to_image(xyxy[chosen]), scores[chosen], classes[chosen]

    def label_candidates(self, image: Image.Image, label: str, synonyms: dict | None, at: tuple[float, float],
                         floor: float) -> list[Region]:
        """The anchors whose box holds the point `at`, scored for one project label (the best of the
        classes that map to it), above `floor`, without NMS: what a click of that label chooses
        among, so an object whose anchors rank another class first is still found. Those at or under
        the display threshold are marked `near_miss`."""
        label_map = LabelMap([label], merge_synonyms(self.synonyms, synonyms))
        classes = [i for i, name in enumerate(self.spec.vocabulary) if label_map.to_project(name) == label]
        if not classes:
            return []
        output, to_image = self._forward(image)
        scores = output[4:][classes].max(axis=0)
        keep = scores > floor
        xyxy, scores = to_image(self._letterbox_boxes(output[:4, keep])), scores[keep]
        x, y = at
        under = (xyxy[:, 0] <= x) & (x <= xyxy[:, 2]) & (xyxy[:, 1] <= y) & (y <= xyxy[:, 3])
        return [Region(label, box=Box(*box), score=float(score), source=self.spec.source,
                       attributes={"near_miss": True} if score <= self.conf else {})
                for box, score in zip(xyxy[under].tolist(), scores[under].tolist())]

    @contextlib.contextmanager
    def one_forward_per_image(self) -> Iterator[None]:
        """Within: a second look at the same image object (a click's candidates of its label, after
        the detections around it) reuses the model's output instead of running the model again.
        Only within: outside, an image changed in place must be looked at afresh."""
        self._remembered = []
        try:
            yield
        finally:
            self._remembered = None

    def _forward(self, image: Image.Image):
        """The model's raw output, (4 + classes, anchors) dequantised, and the mapping of letterbox
        boxes back to image pixels (clipped to the image)."""
        if self._remembered and self._remembered[0][0]() is image:
            return self._remembered[0][1], self._remembered[0][2]
        output, to_image = self._run(image)
        if self._remembered is not None:  # a copy: the next image's run overwrites the buffer
            self._remembered[:] = [(weakref.ref(image), output.copy(), to_image)]
        return output, to_image

    def _run(self, image: Image.Image):
        rgb = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        height, width = rgb.shape[:2]
        blob, (gain_x, gain_y), (left, top) = self._letterbox(rgb)
        self.interpreter.set_tensor(self.input["index"], self._quantized(blob))
        self.interpreter.invoke()
        # copied into a reused buffer: get_tensor's fresh 2.7 MB array per image cost 3 % of the image's
        # time; the view lives for this line only (LiteRT refuses to invoke while one is held)
        np.copyto(self._output, self.interpreter.tensor(self.output["index"])())
        output = self._dequantized(self._output)[0]
        output = output if output.shape[0] < output.shape[1] else output.T  # (4 + classes, anchors)

        def to_image(xyxy: np.ndarray) -> np.ndarray:
            xyxy = (xyxy - [left, top, left, top]) / [gain_x, gain_y, gain_x, gain_y]
            return np.clip(xyxy, 0, [width, height, width, height])

        return output, to_image

    def _letterbox_boxes(self, cxcywh: np.ndarray) -> np.ndarray:
        """Anchor outputs (cx, cy, w, h in 0-1 of the input) -> xyxy in letterbox pixels, float32
        throughout as ultralytics scales and converts them: NMS must see the same numbers."""
        scale = np.array([[self.size[1]], [self.size[0]], [self.size[1]], [self.size[0]]], dtype=np.float32)
        cx, cy, w, h = cxcywh * scale
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)

    def _letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float], tuple[int, int]]:
        """Scale to fit the input (each side rounded), pad evenly with grey; returns the 0-1 blob
        (valid until the next call), the per-axis gains and the left/top padding, for mapping boxes back."""
        height, width = rgb.shape[:2]
        target_h, target_w = self.size
        ratio = min(target_h / height, target_w / width)
        new_w, new_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
        if (new_w, new_h) != (width, height):
            rgb = cv2.resize(rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        # ultralytics' rounding: an odd padding puts the extra pixel at the bottom/right
        top, left = round((target_h - new_h) / 2 - 0.1), round((target_w - new_w) / 2 - 0.1)
        canvas = self._canvas
        canvas.fill(PADDING)
        canvas[top:top + new_h, left:left + new_w] = rgb
        np.divide(canvas[None], np.float32(255), out=self._blob, casting="unsafe")  # float32 x / 255, as ultralytics
        blob = self._blob if self.channels_last else np.ascontiguousarray(self._blob.transpose(0, 3, 1, 2))
        return blob, (new_w / width, new_h / height), (left, top)

    def _quantized(self, blob: np.ndarray) -> np.ndarray:
        """Float exports take the blob as is; full-integer exports take it quantised."""
        dtype = np.dtype(self.input["dtype"])
        if dtype == np.float32:
            return blob
        scale, zero_point = self.input["quantization"]
        limits = np.iinfo(dtype)
        return np.clip(np.round(blob / scale + zero_point), limits.min, limits.max).astype(dtype)

    def _dequantized(self, output: np.ndarray) -> np.ndarray:
        if np.issubdtype(output.dtype, np.floating):
            return output
        scale, zero_point = self.output["quantization"]
        return (output.astype(np.float32) - zero_point) * scale
