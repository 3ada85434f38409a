"""Pipelines as CVAT functions: the function objects CVAT lists, and model regions as CVAT shapes."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Callable

import numpy as np

from openautoglm.converters import Region
from openautoglm.converters.cvat_format import mask_crop
from openautoglm.converters.cvat_wire import to_nuclio
from openautoglm.converters.geometry import mask_outline

log = logging.getLogger(__name__)
CONFIDENCE = "confidence"
SEGMENTER_ID = "openautoglm-segmenter"


def function_id(pipeline_name: str) -> str:
    return f"openautoglm-{pipeline_name}"


class FunctionCatalog:
    """Every configured pipeline as a detector (loaded on first use, once per process), plus the
    segmenter as an interactor. A pipeline that fails to load is left out with one log line."""

    def __init__(self, names: list[str], load: Callable[[str], object], open_vocabulary_labels: list[str]):
        self.names, self.load, self.open_labels = names, load, open_vocabulary_labels
        self._pipelines: dict[str, object] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()

    def pipeline(self, name: str):
        with self._lock:
            if name not in self._pipelines and name not in self._failed:
                try:
                    self._pipelines[name] = self.load(name)
                except Exception as error:  # one bad pipeline must not hide the others
                    log.error("CVAT function %s unavailable: %s", function_id(name), error)
                    self._failed[name] = str(error)
            return self._pipelines.get(name)

    def labels(self, pipeline) -> list[str]:
        return list(pipeline.vocabulary or ()) or list(self.open_labels)

    def detectors(self) -> dict[str, dict]:
        functions = {}
        for name in self.names:
            pipeline = self.pipeline(name)
            if pipeline is not None:
                functions[function_id(name)] = detector_object(name, pipeline, self.labels(pipeline))
        return functions

    def finder(self):
        """The first pipeline that loads: what finds the object at an interactor's click."""
        return next((p for p in map(self.pipeline, self.names) if p is not None), None)

    def segmenter(self):
        for name in self.names:
            pipeline = self.pipeline(name)
            if pipeline is not None and pipeline.segmenter is not None:
                return pipeline.segmenter
        from openautoglm.model.inference.segmenters import GrabCutSegmenter

        return GrabCutSegmenter()  # weight-free fallback: no segmenter is configured

    def all(self) -> dict[str, dict]:
        functions = self.detectors()
        functions[SEGMENTER_ID] = interactor_object(self.segmenter().name)
        return functions


def function_version(version: str) -> int:
    """CVAT reads a function's version with int() and one that fails hides every function (HTTP 500
    on the whole list), so the full version string (pipeline, weights digest, calibration) goes in
    the description and the version is a number derived from it: it changes whenever that does."""
    return int(hashlib.sha256(version.encode()).hexdigest()[:7], 16)


def detector_object(name: str, pipeline, labels: list[str]) -> dict:
    shape_type = "mask" if pipeline.segmenter is not None else "rectangle"
    spec = [{"id": i, "name": label, "type": shape_type,
             "attributes": [{"name": CONFIDENCE, "input_type": "text", "mutable": False, "values": [""]}]}
            for i, label in enumerate(labels)]
    full_version = pipeline.model_version  # changes with the pipeline, its weights or its calibration
    version = str(function_version(full_version))
    annotations = {"type": "detector", "name": f"openautoglm {name}", "version": version,
                   "spec": json.dumps(spec), "framework": "openautoglm",
                   "help_message": "Boxes (and masks) with the model's confidence as an attribute."}
    return {"metadata": {"name": function_id(name), "annotations": annotations},
            "spec": {"description": f"openautoglm pipeline {name}: {full_version}"},
            "status": {"state": "ready"}}


def interactor_object(segmenter_name: str) -> dict:
    annotations = {"type": "interactor", "name": f"openautoglm masks ({segmenter_name})", "version": "1",
                   "spec": "[]", "framework": "openautoglm", "min_pos_points": "1", "min_neg_points": "0",
                   "startswith_box_optional": "true",
                   "help_message": "Draw a box or click inside the object; returns a mask."}
    return {"metadata": {"name": SEGMENTER_ID, "annotations": annotations},
            "spec": {"description": f"openautoglm segmenter: {segmenter_name}"}, "status": {"state": "ready"}}


def detector_shapes(regions: list[Region], threshold: float, masks: bool) -> list[dict]:
    """CVAT applies no threshold and drops `confidence`: filter here and keep it as an attribute.
    `masks`: the function declared mask labels (its pipeline has a segmenter), else rectangles."""
    shapes = []
    for region in regions:
        if region.confidence is not None and region.confidence < threshold:
            continue
        confidence = f"{region.confidence:.4f}" if region.confidence is not None else ""
        shape = {"label": region.label, "confidence": confidence,
                 "attributes": [{"name": CONFIDENCE, "value": confidence}]}
        if masks and region.mask is not None and region.mask.area():
            ring = mask_outline(region.mask)
            ring = region.box.corners() if ring is None else ring
            shape.update(type="mask", mask=to_nuclio(region.mask), points=[float(c) for c in ring.ravel()])
        else:
            shape.update(type="rectangle", points=list(region.box.bounds()))
        shapes.append(shape)
    return shapes


def interactor_answer(mask, score: float, box) -> dict:
    """What CVAT's UI reads from an interactor: `mask`, a 2-D 0/1 array cropped to `bounds`
    ([left, top, right, bottom], right/bottom inclusive, as CVAT stores masks), and `points`, the
    outline as [x, y] pairs (the UI traces the mask itself when they are missing). An empty mask
    answers a one-pixel empty crop at the box and no points, which the UI shows as nothing found."""
    if not mask.area():
        left, top = int(box.x1), int(box.y1)
        return {"mask": [[0]], "bounds": [left, top, left, top], "points": [], "score": round(float(score), 4)}
    crop, left, top, right, bottom = mask_crop(mask)
    ring = mask_outline(mask)
    points = [] if ring is None else [[float(x), float(y)] for x, y in ring]
    return {"mask": crop.astype(np.uint8).tolist(), "bounds": [left, top, right, bottom], "points": points,
            "score": round(float(score), 4)}
