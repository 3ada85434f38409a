"""Label Studio tasks JSON (annotations and predictions).

Quirks kept: coordinates are percentages of `original_width`/`original_height`; a rectangle
rotates about its top-left corner (x, y), not its centre; brush masks are Label Studio's RLE
(`brush_rle`); polygons have one ring each, so a multi-ring object is written as a brush mask;
an open polygon (`closed: false`) is a polyline; a keypoint is one point. An object's keypoints
(COCO/YOLO pose) are one `keypointlabels` result each, grouped under the object's result by
`parentID`, numbered by the id suffix `_kp<index>`, with the visibility in `value.visibility`
(1 hidden, 2 visible; unlabelled ones are not written), so they come back together. Human annotations and
model predictions are both kept: annotation regions have source "human", prediction regions the
prediction's model_version and per-region scores, and the image's score is the prediction's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from . import brush_rle, fields
from .coco import encode, load_json, write_encoded_list
from .files import atomic_file, displayed_size, find_image
from .geometry import polygons_to_mask
from .parallel import mask_count, ordered_map
from .skipping import element, note, skipping, skipping_invalid
from .types import AnnotatedImage, AnnotationError, Box, Dataset, ImageRecord, Mask, Region, Shape

NAME = "label_studio"
HUMAN = "human"
ANNOTATION_KEY = "label_studio.annotation"  # which of a task's annotations a region belongs to
_LABEL_KEYS = {
    "rectanglelabels": Shape.BOX, "polygonlabels": Shape.POLYGON, "brushlabels": Shape.MASK,
    "keypointlabels": Shape.POINTS, "choices": Shape.TAG,
}
_CONTROL_NAMES = {"rectanglelabels": "label", "polygonlabels": "polygon", "brushlabels": "brush",
                  "keypointlabels": "keypoint", "choices": "choice"}


# ---- parse ---------------------------------------------------------------------------------

def parse_result(result: Any, width: int, height: int, source: str | None, group: int | None) -> list[Region]:
    kind = fields.require(result, "type", str).lower()
    if kind not in _LABEL_KEYS:
        return []  # a control openautoglm does not convert (e.g. a TextArea); not an object
    value = fields.require(result, "value", dict)
    labels = fields.require(value, kind, list)
    if not labels:
        raise AnnotationError(f"value.{kind} is empty")
    width = int(fields.number(result, "original_width", width))
    height = int(fields.number(result, "original_height", height))
    sx, sy = width / 100.0, height / 100.0
    shape, box, points, mask = _LABEL_KEYS[kind], None, (), None
    if shape is Shape.BOX:
        w, h = fields.number(value, "width") * sx, fields.number(value, "height") * sy
        rotation = fields.number(value, "rotation", 0.0)
        left, top = fields.number(value, "x") * sx, fields.number(value, "y") * sy
        cx, cy = _rotate_about_pivot(left, top, w / 2, h / 2, rotation)
        box = Box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, rotation)
    elif shape is Shape.POLYGON:
        raw = fields.require(value, "points", list)
        if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(c, (int, float)) for c in p) for p in raw):
            raise AnnotationError("value.points must be a list of [x, y] pairs")
        ring = tuple((p[0] * sx, p[1] * sy) for p in raw)
        if value.get("closed") is False:
            shape = Shape.POLYLINE
        points = (ring,)
    elif shape is Shape.MASK:
        if value.get("format", "rle") != "rle":
            raise AnnotationError(f"brush format {value.get('format')!r} is not supported (only 'rle')")
        mask = Mask.from_array(brush_rle.decode(fields.require(value, "rle", list), width, height))
    elif shape is Shape.POINTS:
        points = (((fields.number(value, "x") * sx, fields.number(value, "y") * sy),),)
    attributes = {ANNOTATION_KEY: group} if group else {}
    return [
        Region(str(label), shape, box, points, mask, score=fields.number(result, "score", None), source=source,
               id=result.get("id"), attributes=attributes)
        for label in labels
    ]


def _rotate_about_pivot(px: float, py: float, dx: float, dy: float, degrees: float) -> tuple[float, float]:
    """The point (px, py) + (dx, dy) rotated clockwise by `degrees` about (px, py)."""
    theta = math.radians(degrees)
    return px + dx * math.cos(theta) - dy * math.sin(theta), py + dx * math.sin(theta) + dy * math.cos(theta)


def _task_size(task: dict, images_dir: Path | None, file_name: str) -> tuple[int, int] | None:
    for group in ("annotations", "predictions"):
        for entry in task.get(group) or []:
            for result in (entry or {}).get("result") or []:
                if isinstance(result, dict) and "original_width" in result and "original_height" in result:
                    return int(result["original_width"]), int(result["original_height"])
    if images_dir is not None:
        stem = PurePosixPath(file_name.split("?d=")[-1]).with_suffix("")
        found = find_image(Path(images_dir), stem.name)
        if found is not None:
            return displayed_size(found)
    return None


def parse_task(task: Any, images_dir: Path | None = None, image_key: str | None = None) -> AnnotatedImage:
    data = fields.require(task, "data", dict)
    image_key = image_key or ("image" if "image" in data else next(iter(data), None))
    if image_key is None or not isinstance(data.get(image_key), str):
        raise AnnotationError("data has no image URL")
    file_name = data[image_key]
    size = _task_size(task, images_dir, file_name)
    if size is None:
        raise AnnotationError("no original_width/original_height in its results and no image found in --images")
    other_data = {k: v for k, v in data.items() if k != image_key}
    attributes = {"label_studio.data": other_data} if other_data else {}
    image = ImageRecord(task.get("id"), file_name, size[0], size[1], attributes)
    item = AnnotatedImage(image)
    for group_name in ("annotations", "predictions"):
        for index, entry in enumerate(task.get(group_name) or []):
            is_prediction = group_name == "predictions"
            source = (str(entry.get("model_version") or "model")) if is_prediction else HUMAN
            if is_prediction and item.score is None:
                item.score = fields.number(entry, "score", None)
            regions, children = [], []
            for r_index, result in enumerate(fields.require(entry, "result", list, [])):
                with element(f"{group_name}[{index}].result[{r_index}]"):
                    parsed = parse_result(result, size[0], size[1], source, None if is_prediction else index)
                    child = _keypoint_child(result, parsed)
                    if child is None:
                        regions += parsed
                    else:
                        children.append((child, parsed))
            item.regions += _with_keypoints(regions, children)
    return item


_KEYPOINT_INDEX = re.compile(r"_kp(\d+)$")


def _keypoint_child(result: dict, parsed: list[Region]) -> tuple[str, int | None, float, float, int] | None:
    """(parent id, index or None, x, y, visibility) for a keypoint result grouped under another
    result by `parentID`; None for any other result."""
    parent = result.get("parentID")
    if parent is None or not parsed or parsed[0].shape is not Shape.POINTS:
        return None
    (((x, y),),) = parsed[0].points
    found = _KEYPOINT_INDEX.search(str(result.get("id", "")))
    visibility = result["value"].get("visibility", 2)
    if visibility not in (1, 2):
        raise AnnotationError(f"value.visibility must be 1 or 2, got {visibility!r}")
    return str(parent), int(found.group(1)) if found else None, x, y, visibility


def _with_keypoints(regions: list[Region], children: list) -> list[Region]:
    """Each parent region with its grouped keypoints, at their indices (unnumbered ones after the
    numbered, in order; gaps are unlabelled); a keypoint whose parent is not there stays a point."""
    by_parent: dict[str, list] = {}
    for child, _ in children:
        by_parent.setdefault(child[0], []).append(child)
    grouped = []
    for region in regions:
        mine = by_parent.pop(str(region.id), None) if region.id is not None else None
        if not mine:
            grouped.append(region)
            continue
        numbered = {index: (x, y, v) for _, index, x, y, v in mine if index is not None}
        rest = [(x, y, v) for _, index, x, y, v in mine if index is None]
        size = max(numbered, default=-1) + 1
        keypoints = [numbered.get(k, (0.0, 0.0, 0)) for k in range(size)] + rest
        grouped.append(dataclasses.replace(region, keypoints=tuple(keypoints)))
    orphans = {id(child) for parent in by_parent.values() for child in parent}
    return grouped + [region for child, parsed in children if id(child) in orphans for region in parsed]


def _entries(task: dict) -> list:
    return [e for key in ("annotations", "predictions") for e in task.get(key) or [] if isinstance(e, dict)]


def _parse_numbered(index: int, task: Any, images_dir: Path | None,
                    skip: bool) -> tuple[AnnotatedImage | None, list[str]]:
    """One task, and what was skipped in it (`skip`: as `--skip-invalid` asks, also in a process)."""
    ident = task.get("id") if isinstance(task, dict) else None
    with skipping_invalid() if skip else contextlib.nullcontext([]) as skipped:
        with element(f"task {index}" + (f" (id {ident})" if ident is not None else "")):
            return parse_task(task, images_dir), skipped
    return None, skipped


def parse(doc: Any, images_dir: Path | None = None) -> Dataset:
    tasks = doc if isinstance(doc, list) else [doc]
    items = []
    brushes = sum(1 for task in tasks if isinstance(task, dict) for entry in _entries(task)
                  for result in entry.get("result") or [] if isinstance(result,
                                                                        dict) and result.get("type") == "brushlabels")
    parse_one = functools.partial(_parse_numbered, images_dir=images_dir, skip=skipping())
    for item, skipped in ordered_map(parse_one, tasks, brushes):  # brush decoding over processes
        note(skipped)
        if item is not None:
            items.append(item)
    return Dataset([], items).with_all_labels()


# ---- dump ----------------------------------------------------------------------------------

def dump_region(region: Region, width: int, height: int, region_id: str, from_name: str | None = None,
                to_name: str = "image") -> list[dict[str, Any]]:
    """One region -> Label Studio results (several for multi-point keypoints, and one more per
    labelled keypoint of an object, grouped under it by `parentID`). `from_name`
    and `to_name` name the labeling config's control and image tags."""
    sx, sy = 100.0 / width, 100.0 / height
    if region.keypoints and region.shape is Shape.POINTS and region.box is not None:
        # keypoints alone (COCO without a segmentation): the box carries them, each point is written once
        region = dataclasses.replace(region, shape=Shape.BOX, points=())
    if region.shape is Shape.POLYGON and len(region.points) > 1:
        # Label Studio polygons have one ring; a brush mask keeps the object whole.
        region = Region(region.label, Shape.MASK, mask=polygons_to_mask(region.points, width, height),
                        score=region.score, calibrated_score=region.calibrated_score, source=region.source,
                        id=region.id)
    kind = {Shape.BOX: "rectanglelabels", Shape.POLYGON: "polygonlabels", Shape.POLYLINE: "polygonlabels",
            Shape.MASK: "brushlabels", Shape.POINTS: "keypointlabels", Shape.TAG: "choices"}[region.shape]
    values: list[dict[str, Any]]
    if region.shape is Shape.BOX:
        box = region.box
        # the rotated top-left corner; an unrotated box's is (x1, y1), read without the matrix product
        left, top = box.corners()[0] if box.rotation else (box.x1, box.y1)
        values = [{"x": left * sx, "y": top * sy, "width": box.width * sx, "height": box.height * sy,
                   "rotation": box.rotation}]
    elif region.shape in (Shape.POLYGON, Shape.POLYLINE):
        values = [{"points": [[x * sx, y * sy] for x, y in region.points[0]],
                   "closed": region.shape is Shape.POLYGON}]
    elif region.shape is Shape.MASK:
        values = [{"format": "rle", "rle": brush_rle.encode(region.mask.to_array())}]
    elif region.shape is Shape.POINTS:
        values = [{"x": x * sx, "y": y * sy, "width": 0.5} for x, y in region.points[0]]
    else:
        values = [{}]
    results = []
    for index, value in enumerate(values):
        value[kind] = [region.label]
        result = {"id": region_id if index == 0 else f"{region_id}_{index}", "type": kind,
                  "from_name": from_name or _CONTROL_NAMES[kind], "to_name": to_name, "value": value}
        if region.shape is not Shape.TAG:
            result.update(original_width=width, original_height=height, image_rotation=0)
        if region.confidence is not None:
            result["score"] = region.confidence
        results.append(result)
    for index, (x, y, visibility) in enumerate(region.keypoints):
        if visibility:  # unlabelled keypoints are left out; the indices in the ids keep the others' places
            result = {"id": f"{region_id}_kp{index}", "type": "keypointlabels", "parentID": region_id,
                      "from_name": _CONTROL_NAMES["keypointlabels"], "to_name": to_name,
                      "value": {"x": x * sx, "y": y * sy, "width": 0.5, "keypointlabels": [region.label],
                                "visibility": visibility},
                      "original_width": width, "original_height": height, "image_rotation": 0}
            if region.confidence is not None:
                result["score"] = region.confidence
            results.append(result)
    return results


def dump_item(item: AnnotatedImage, index: int, image_url_root: str | None = None,
              label_config: str | None = None) -> dict[str, Any]:
    """A task. An image predicted by a pipeline (its `model_version` attribute) gets one prediction
    under that version, with its task score, even with no region (Label Studio sorts by it).
    `image_url_root` prefixes the file name in the task data; `label_config` (its text) names the
    controls and the data field, and gives each region the shape of the control for its label."""
    image, version, targets = item.image, item.image.attributes.get("model_version"), _targets(label_config)
    annotations: dict[int, list] = {}
    predictions: dict[str, list] = {version: []} if version and item.score is not None else {}
    model = []
    for r_index, region in enumerate(item.regions):
        region_id = str(region.id) if region.id is not None else f"{index}_{r_index}"
        if region.source in (None, HUMAN) and region.score is None:
            results = dump_region(region, image.width, image.height, region_id)
            annotations.setdefault(region.attributes.get(ANNOTATION_KEY) or 0, []).extend(results)
        elif targets:
            model.append(region)
        else:
            results = dump_region(region, image.width, image.height, region_id)
            predictions.setdefault(version or region.source or "model", []).extend(results)
    if model:
        predictions.setdefault(version or "model", []).extend(
            _encode(model, targets, image.width, image.height, image.id if image.id is not None else index))
    task: dict[str, Any] = {}
    if image.id is not None:
        task["id"] = image.id
    data_key = targets[0].data_key if targets else "image"
    task["data"] = {data_key: (image_url_root or "") + image.file_name, **image.attributes.get("label_studio.data", {})}
    task["annotations"] = [{"result": results} for _, results in sorted(annotations.items())]
    task["predictions"] = [
        {"model_version": version, "score": _prediction_score(item, results), "result": results}
        for version, results in predictions.items()
    ]
    return task


def _targets(label_config: str | None):
    if not label_config:
        return ()
    from .label_studio_config import parse  # it builds on this module

    return parse(label_config)


def _encode(regions: list[Region], targets, width: int, height: int, task_id: object) -> list[dict]:
    from .label_studio_config import encode_regions

    return encode_regions(regions, targets, width, height, task_id)


def _prediction_score(item: AnnotatedImage, results: list[dict]) -> float | None:
    if item.score is not None:
        return item.score
    scores = [r["score"] for r in results if "score" in r]
    return float(np.mean(scores)) if scores else None


def dump(dataset: Dataset) -> list[dict[str, Any]]:
    return [dump_item(item, index) for index, item in enumerate(dataset.items)]


def read(path: Path, images_dir: Path | None = None) -> Dataset:
    # not orjson: its parse tree took the peak of reading 5,000 exported tasks from 232 to 278 MB
    doc = load_json(path, fast=False)
    try:
        return parse(doc, images_dir)
    except AnnotationError as error:
        raise error.at(str(path)) from None


def write(dataset: Dataset, path: Path, images_dir: Path | None = None, image_url_root: str | None = None,
          label_config: str | None = None) -> None:
    """Task by task, over processes when masks are many (`parallel`): memory stays that of a few tasks."""
    task_json = functools.partial(_task_json, image_url_root=image_url_root, label_config=label_config)
    with atomic_file(Path(path)) as handle:
        write_encoded_list(handle, ordered_map(task_json, dataset.items, mask_count(dataset.items)))


def _task_json(index: int, item: AnnotatedImage, image_url_root: str | None = None,
               label_config: str | None = None) -> str:
    return encode(dump_item(item, index, image_url_root, label_config))
