"""CVAT for images 1.1 XML (and CVAT for video 1.1, read frame by frame).

Quirks kept: boxes rotate about their centre (the canonical convention); points are `x,y;x,y`;
masks are `rle` run lengths (background first, row-major) over the crop `left, top, width, height`
(width = right - left + 1); `occluded` and `z_order` are shape attributes; `source` is manual,
auto, semi-auto or file; attribute values are strings ("true"/"false" for checkboxes, read back
as booleans). Multi-ring polygons are written as one polygon per ring sharing a group_id, and read back as one object.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr, escape

import numpy as np

from .fields import parse_float, parse_int
from .files import atomic_file
from .skipping import element
from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape

NAME = "cvat"
HUMAN = "human"
_SOURCES = {"manual", "auto", "semi-auto", "file"}
_TAGS = {"box": Shape.BOX, "polygon": Shape.POLYGON, "polyline": Shape.POLYLINE, "points": Shape.POINTS,
         "mask": Shape.MASK, "tag": Shape.TAG}


# ---- crop RLE (shared with the CVAT wire forms) ---------------------------------------------

def crop_runs(bitmap: np.ndarray) -> list[int]:
    """Run lengths of a row-major bitmap, starting with a (possibly empty) background run."""
    flat = np.asarray(bitmap, dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def runs_to_crop(runs: list[int], width: int, height: int) -> np.ndarray:
    if any(r < 0 for r in runs) or sum(runs) != width * height:
        raise AnnotationError(f"mask RLE covers {sum(runs)} pixels but its {width}x{height} box has {width * height}")
    values = (np.arange(len(runs)) % 2).astype(bool)
    return np.repeat(values, runs).reshape(height, width)


def mask_crop(mask: Mask) -> tuple[np.ndarray, int, int, int, int]:
    """(crop bitmap, left, top, right, bottom) with an inclusive right/bottom, as CVAT stores masks."""
    bitmap = mask.to_array()
    ys, xs = np.nonzero(bitmap)
    if xs.size == 0:
        raise AnnotationError("mask is empty")
    left, top, right, bottom = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    return bitmap[top:bottom + 1, left:right + 1], left, top, right, bottom


def full_mask(crop: np.ndarray, left: int, top: int, width: int, height: int) -> Mask:
    crop_h, crop_w = crop.shape
    if left < 0 or top < 0 or left + crop_w > width or top + crop_h > height:
        raise AnnotationError(f"mask box ({left}, {top}, {crop_w}x{crop_h}) lies outside the {width}x{height} image")
    bitmap = np.zeros((height, width), dtype=bool)
    bitmap[top:top + crop_h, left:left + crop_w] = crop
    return Mask.from_array(bitmap)


# ---- parse ---------------------------------------------------------------------------------

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
    shape = _TAGS[element.tag]
    get = element.get
    label = get("label") or ""
    attributes: dict[str, Any] = {a.get("name", ""): _attribute_value(a.text or "") for a in element.findall("attribute")}
    if get("occluded") not in (None, "0"):
        attributes["occluded"] = True
    if get("z_order") not in (None, "0"):
        attributes["z_order"] = parse_int(get("z_order"), "z_order")
    if get("group_id") not in (None, "0"):
        attributes["cvat.group_id"] = parse_int(get("group_id"), "group_id")
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
    return Region(label, shape, box, points, mask, source=source, attributes=attributes)


def parse(text: str) -> Dataset:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise AnnotationError(f"invalid XML: {error}") from None
    names = [(label.findtext("name") or "").strip() for label in root.iter("label")]
    items = []
    for index, node in enumerate(root.iter("image")):
        with element(f"<image> {index + 1} ({node.get('name')!r})"):
            image = ImageRecord(
                parse_int(node.get("id", str(index)), "id"), node.get("name") or "",
                parse_int(node.get("width"), "width"), parse_int(node.get("height"), "height"),
                {"subset": node.get("subset")} if node.get("subset") not in (None, "default", "train") else {},
            )
            item = AnnotatedImage(image)
            for s_index, child in enumerate(c for c in node if c.tag in _TAGS):
                with element(f"<{child.tag}> {s_index + 1}"):
                    item.regions.append(parse_shape(child, image.width, image.height))
            item.regions = _merge_groups(item.regions)
            items.append(item)
    if not items and (root.find("track") is not None or root.find("tag") is not None):
        items = _parse_video(root)
    return Dataset([Category(n) for n in names if n], items).with_all_labels()


def _parse_video(root: ET.Element) -> list[AnnotatedImage]:
    """CVAT for video 1.1: `<track>` elements holding one shape per frame (the export writes the
    interpolated frames too; `outside="1"` ends a track), and frame-level `<tag frame=...>`. Each
    frame becomes an image named as CVAT names exported frames; a shape keeps its track id."""
    size = root.find(".//original_size")
    if size is None:
        raise AnnotationError("a CVAT for video file needs <meta> ... <original_size> (the frame size)")
    width = parse_int(size.findtext("width"), "<original_size><width>")
    height = parse_int(size.findtext("height"), "<original_size><height>")
    frames: dict[int, list[Region]] = {frame: [] for frame in range(parse_int(root.findtext(".//task/size") or "0",
                                                                              "<size>"))}
    for index, track in enumerate(root.iter("track")):
        for s_index, child in enumerate(c for c in track if c.tag in _TAGS):
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


# ---- dump ----------------------------------------------------------------------------------

def _number(value: float) -> str:
    return repr(float(value))


def _public_attributes(region: Region) -> dict[str, Any]:
    return {k: v for k, v in region.attributes.items() if "." not in k and k not in ("occluded", "z_order")}


def _attribute_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def dump_shape(region: Region, width: int, height: int) -> str:
    attrs = region.attributes
    source = "manual" if region.source in (None, HUMAN) else region.source if region.source in _SOURCES else "auto"
    head = f"<{region.shape.value} label={quoteattr(region.label)} source={quoteattr(source)}"
    if region.shape is not Shape.TAG:
        head += f' occluded="{int(bool(attrs.get("occluded")))}"'
    if region.shape is Shape.BOX:
        box = region.box
        head += (f' xtl="{_number(box.x1)}" ytl="{_number(box.y1)}" xbr="{_number(box.x2)}" ybr="{_number(box.y2)}"'
                 + (f' rotation="{_number(box.rotation)}"' if box.rotation else ""))
    elif region.shape is Shape.MASK:
        crop, left, top, right, bottom = mask_crop(region.mask)
        rle = ", ".join(str(r) for r in crop_runs(crop))
        head += f' rle="{rle}" left="{left}" top="{top}" width="{right - left + 1}" height="{bottom - top + 1}"'
    elif region.shape is not Shape.TAG:
        head += ' points="' + ";".join(f"{_number(x)},{_number(y)}" for x, y in region.points[0]) + '"'
    if region.shape is not Shape.TAG:
        head += f' z_order="{int(attrs.get("z_order", 0))}"'
    if attrs.get("cvat.group_id"):
        head += f' group_id="{int(attrs["cvat.group_id"])}"'
    children = "".join(
        f"<attribute name={quoteattr(str(k))}>{escape(_attribute_text(v))}</attribute>"
        for k, v in _public_attributes(region).items()
    )
    return f"    {head}>{children}</{region.shape.value}>\n"


def _split_rings(regions: list[Region]) -> list[Region]:
    """CVAT polygons have one ring: a multi-ring object becomes one polygon per ring in a new group."""
    next_group = 1 + max((int(r.attributes.get("cvat.group_id", 0)) for r in regions), default=0)
    result = []
    for region in regions:
        if region.shape is Shape.POLYGON and len(region.points) > 1:
            attributes = {**region.attributes, "cvat.group_id": next_group}
            next_group += 1
            result += [Region(region.label, Shape.POLYGON, points=(ring,), source=region.source,
                              attributes=attributes) for ring in region.points]
        else:
            result.append(region)
    return result


def _merge_groups(regions: list[Region]) -> list[Region]:
    """Polygons of one label in one group are one object (as CVAT's own COCO export treats them)."""
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
                                    source=first.source, attributes=attributes)
        for i in indices[1:]:
            merged[i] = None
    return [r for r in merged if r is not None]


def _label_attributes(dataset: Dataset) -> dict[str, dict[str, None]]:
    used: dict[str, dict[str, None]] = {name: {} for name in dataset.label_names}
    for item in dataset.items:
        for region in item.regions:
            used[region.label].update(dict.fromkeys(_public_attributes(region)))
    return used


def dump(dataset: Dataset) -> str:
    dataset = dataset.with_all_labels()
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta><task><labels>\n']
    for name, attributes in _label_attributes(dataset).items():
        declared = "".join(
            f"<attribute><name>{escape(a)}</name><mutable>False</mutable><input_type>text</input_type>"
            "<default_value></default_value><values></values></attribute>" for a in attributes
        )
        parts.append(f"    <label><name>{escape(name)}</name><type>any</type><attributes>{declared}</attributes></label>\n")
    parts.append("  </labels></task></meta>\n")
    for index, item in enumerate(dataset.items):
        image = item.image
        image_id = image.id if isinstance(image.id, int) else index
        subset = f' subset={quoteattr(str(image.attributes["subset"]))}' if "subset" in image.attributes else ""
        parts.append(f'  <image id="{image_id}" name={quoteattr(image.file_name)} width="{image.width}" '
                     f'height="{image.height}"{subset}>\n')
        parts.extend(dump_shape(region, image.width, image.height) for region in _split_rings(item.regions))
        parts.append("  </image>\n")
    parts.append("</annotations>\n")
    return "".join(parts)


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
    text = dump(dataset)
    with atomic_file(Path(path)) as handle:
        handle.write(text)
