"""CVAT for images 1.1 XML (and CVAT for video 1.1, read frame by frame).

Quirks kept: boxes rotate about their centre (the canonical convention); points are `x,y;x,y`;
masks are `rle` run lengths (background first, row-major) over the crop `left, top, width, height`
(width = right - left + 1); `occluded` and `z_order` are shape attributes; `source` is manual,
auto, semi-auto or file; attribute values are strings ("true"/"false" for checkboxes, read back
as booleans). Multi-ring polygons are written as one polygon per ring sharing a group_id, and read back as one object.
An object's keypoints are a `<skeleton>` of `<points>`, one per keypoint (named by the label's
sublabels, `outside="1"` for an unlabelled one, `occluded="1"` for a hidden one); a skeleton
sharing a group_id with a shape of its label is that shape's keypoints (how an object keeps both
its box or outline and its keypoints), a skeleton alone is a box around its points.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .cvat_dump import dump, dump_parts
from .cvat_format import CONFIDENCE, HUMAN, NAME, TAGS, full_mask, runs_to_crop
from .fields import parse_float, parse_int
from .files import atomic_file
from .skipping import element
from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Region, Shape

__all__ = ["NAME", "dump", "dump_parts", "parse", "read", "write"]


def _points(text: str | None) -> tuple[tuple[float, float], ...]:
    if not text:
        raise AnnotationError("missing points")
    pairs = []
    for pair in text.split(";"):
        x, _, y = pair.partition(",")
        pairs.append((parse_float(x, "point x"), parse_float(y, "point y")))
    return tuple(pairs)


def _attribute_value(text: str) -> Any:
    return {"true": True, "false": False}.get(text, text)


def parse_shape(element: ET.Element, width: int, height: int) -> Region:
    shape = TAGS[element.tag]
    get = element.get
    label = get("label") or ""
    attributes: dict[str, Any] = {a.get("name",
                                        ""): _attribute_value(a.text or "") for a in element.findall("attribute")}
    if get("occluded") not in (None, "0"):
        attributes["occluded"] = True
    if get("z_order") not in (None, "0"):
        attributes["z_order"] = parse_int(get("z_order"), "z_order")
    if get("group_id") not in (None, "0"):
        attributes["cvat.group_id"] = parse_int(get("group_id"), "group_id")
    score = _score(attributes.pop(CONFIDENCE, None))
    source = get("source")
    source = HUMAN if source in (None, "manual") else source
    box, points, mask = None, (), None
    if shape is Shape.BOX:
        box = Box(*(parse_float(get(k), k) for k in ("xtl", "ytl", "xbr", "ybr")),
                  rotation=parse_float(get("rotation", "0"), "rotation"))
    elif shape is Shape.MASK:
        left, top = parse_int(get("left"), "left"), parse_int(get("top"), "top")
        crop_w, crop_h = parse_int(get("width"), "width"), parse_int(get("height"), "height")
        runs = [parse_int(v, "rle value") for v in (get("rle") or "").split(",") if v.strip()]
        mask = full_mask(runs_to_crop(runs, crop_w, crop_h), left, top, width, height)
    elif shape is not Shape.TAG:
        points = (_points(get("points")),)
    return Region(label, shape, box, points, mask, score=score, source=source, attributes=attributes)


def _score(text: Any) -> float | None:
    """The `confidence` attribute as a region's score, when it is one (0..1)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if 0.0 <= value <= 1.0 else None


def parse(text: str) -> Dataset:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise AnnotationError(f"invalid XML: {error}") from None
    names, sublabels = _label_names(root)
    items = []
    for index, node in enumerate(root.iter("image")):
        with element(f"<image> {index + 1} ({node.get('name')!r})"):
            image = ImageRecord(
                parse_int(node.get("id", str(index)), "id"), node.get("name") or "",
                parse_int(node.get("width"), "width"), parse_int(node.get("height"), "height"),
                {"subset": node.get("subset")} if node.get("subset") not in (None, "default", "train") else {},
            )
            item = AnnotatedImage(image)
            for s_index, child in enumerate(c for c in node if c.tag in TAGS or c.tag == "skeleton"):
                with element(f"<{child.tag}> {s_index + 1}"):
                    item.regions.append(parse_skeleton(child, sublabels) if child.tag == "skeleton" else
                                        parse_shape(child, image.width, image.height))
            item.regions = _merge_groups(item.regions)
            items.append(item)
    if not items and (root.find("track") is not None or root.find("tag") is not None):
        items = _parse_video(root)
    categories = [Category(n, attributes={"keypoints": sublabels[n]} if n in sublabels else {}) for n in names if n]
    return Dataset(categories, items).with_all_labels()


def _label_names(root: ET.Element) -> tuple[list[str], dict[str, list[str]]]:
    """The labels that are objects, and each skeleton label's keypoint names in order (its
    sublabels: labels with a `<parent>`, which are not objects of their own)."""
    names, sublabels = [], {}
    for label in root.iter("label"):
        name, parent = (label.findtext("name") or "").strip(), (label.findtext("parent") or "").strip()
        if parent:
            sublabels.setdefault(parent, []).append(name)
        else:
            names.append(name)
            if (label.findtext("type") or "").strip() == "skeleton":
                sublabels.setdefault(name, [])
    return names, sublabels


def parse_skeleton(node: ET.Element, sublabels: dict[str, list[str]]) -> Region:
    """A skeleton: a box around its points, with every keypoint in its label's sublabel order
    (points of a name the meta does not declare follow, in order)."""
    label = node.get("label") or ""
    order = list(sublabels.get(label, []))
    found: dict[str, tuple[float, float, int]] = {}
    for index, point in enumerate(node.findall("points")):
        with element(f"<points> {index + 1}"):
            name = point.get("label") or str(index + 1)
            ((x, y), *rest) = _points(point.get("points"))
            if rest:
                raise AnnotationError("a skeleton's point has one x,y pair")
            visibility = 0 if point.get("outside") == "1" else 1 if point.get("occluded") not in (None, "0") else 2
            found[name] = (x, y, visibility)
            if name not in order:
                order.append(name)
    if not found:
        raise AnnotationError("a skeleton without points")
    keypoints = tuple(found.get(name, (0.0, 0.0, 0)) for name in order)
    labelled = [(x, y) for x, y, v in keypoints if v] or [(x, y) for x, y, _ in found.values()]
    xs, ys = [x for x, _ in labelled], [y for _, y in labelled]
    shell = ET.Element("box", {k: v for k, v in node.attrib.items() if k != "points"})
    shell.extend(node.findall("attribute"))
    shell.attrib.update(xtl=str(min(xs)), ytl=str(min(ys)), xbr=str(max(xs)), ybr=str(max(ys)))
    region = parse_shape(shell, 0, 0)
    return dataclasses.replace(region, keypoints=keypoints, attributes={**region.attributes, "cvat.skeleton": True})


def _parse_video(root: ET.Element) -> list[AnnotatedImage]:
    """CVAT for video 1.1: `<track>` elements holding one shape per frame (the export writes the
    interpolated frames too; `outside="1"` ends a track), and frame-level `<tag frame=...>`. Each
    frame becomes an image named as CVAT names the frames it exports (`frame_<frame>.PNG`, frame
    numbers of the video: a task cut from `start_frame` with a `step=N` frame filter numbers its
    frames start, start + N, ...; datumaro numbers them 0, 1, ... instead); a shape keeps its track id."""
    size = root.find(".//original_size")
    if size is None:
        raise AnnotationError("a CVAT for video file needs <meta> ... <original_size> (the frame size)")
    width = parse_int(size.findtext("width"), "<original_size><width>")
    height = parse_int(size.findtext("height"), "<original_size><height>")
    count = parse_int(root.findtext(".//task/size") or "0", "<size>")
    start = parse_int(root.findtext(".//task/start_frame") or "0", "<start_frame>")
    step = re.search(r"step\s*=\s*([1-9]\d*)", root.findtext(".//task/frame_filter") or "")
    frames: dict[int, list[Region]] = {start + i * (int(step.group(1)) if step else 1): [] for i in range(count)}
    for index, track in enumerate(root.iter("track")):
        for s_index, child in enumerate(c for c in track if c.tag in TAGS):
            if child.get("outside") == "1":
                continue
            for key in ("label", "source"):  # given once on the track
                if child.get(key) is None and track.get(key) is not None:
                    child.set(key, track.get(key))
            with element(f"<track> {index + 1} (id {track.get('id')}) <{child.tag}> {s_index + 1}"):
                region = parse_shape(child, width, height)
                region.attributes["cvat.track_id"] = parse_int(track.get("id", str(index)), "track id")
                frames.setdefault(parse_int(child.get("frame"), "frame"), []).append(region)
    for index, tag in enumerate(root.findall("tag")):
        with element(f"<tag> {index + 1}"):
            frames.setdefault(parse_int(tag.get("frame"), "frame"), []).append(parse_shape(tag, width, height))
    return [AnnotatedImage(ImageRecord(frame, f"frame_{frame:06d}.PNG", width, height), _merge_groups(regions))
            for frame, regions in sorted(frames.items())]


def _merge_groups(regions: list[Region]) -> list[Region]:
    """Polygons of one label in one group are one object (as CVAT's own COCO export treats them);
    a skeleton grouped with a shape of its label gives that shape its keypoints."""
    regions = _attach_skeletons(regions)
    groups: dict[tuple, list[int]] = {}
    for index, region in enumerate(regions):
        group = region.attributes.get("cvat.group_id")
        if region.shape is Shape.POLYGON and group:
            groups.setdefault((group, region.label), []).append(index)
    merged = list(regions)
    for indices in groups.values():
        if len(indices) < 2:
            continue
        first = regions[indices[0]]
        attributes = {k: v for k, v in first.attributes.items() if k != "cvat.group_id"}
        merged[indices[0]] = Region(first.label, Shape.POLYGON, points=tuple(regions[i].points[0] for i in indices),
                                    source=first.source, attributes=attributes,
                                    keypoints=next((regions[i].keypoints for i in indices if regions[i].keypoints), ()))
        for i in indices[1:]:
            merged[i] = None
    return [r for r in merged if r is not None]


def _attach_skeletons(regions: list[Region]) -> list[Region]:
    shapes = {(r.attributes.get("cvat.group_id"), r.label): index for index, r in enumerate(regions)
              if r.attributes.get("cvat.group_id") and not r.attributes.get("cvat.skeleton")}
    attached, dropped = list(regions), set()
    for index, region in enumerate(regions):
        if not region.attributes.get("cvat.skeleton"):
            continue
        partner = shapes.get((region.attributes.get("cvat.group_id"), region.label))
        if partner is not None:
            attached[partner] = dataclasses.replace(attached[partner], keypoints=region.keypoints)
            dropped.add(index)
    return [dataclasses.replace(r, attributes={k: v for k, v in r.attributes.items() if k != "cvat.skeleton"})
            if r.attributes.get("cvat.skeleton") else r for i, r in enumerate(attached) if i not in dropped]


def read(path: Path, images_dir: Path | None = None) -> Dataset:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise AnnotationError(f"cannot read: {error.strerror}", str(path)) from None
    try:
        return parse(text)
    except AnnotationError as error:
        raise error.at(str(path)) from None


def write(dataset: Dataset, path: Path, images_dir: Path | None = None) -> None:
    with atomic_file(Path(path)) as handle:
        handle.writelines(dump_parts(dataset))
