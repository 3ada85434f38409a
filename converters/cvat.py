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
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Iterator
from xml.sax.saxutils import escape, quoteattr

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
    attributes: dict[str, Any] = {a.get("name",
                                        ""): _attribute_value(a.text or "") for a in element.findall("attribute")}
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
            for s_index, child in enumerate(c for c in node if c.tag in _TAGS or c.tag == "skeleton"):
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
    frame becomes an image named as CVAT names exported frames; a shape keeps its track id."""
    size = root.find(".//original_size")
    if size is None:
        raise AnnotationError("a CVAT for video file needs <meta> ... <original_size> (the frame size)")
    width = parse_int(size.findtext("width"), "<original_size><width>")
    height = parse_int(size.findtext("height"), "<original_size><height>")
    count = parse_int(root.findtext(".//task/size") or "0", "<size>")
    frames: dict[int, list[Region]] = {frame: [] for frame in range(count)}
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


def _source(region: Region) -> str:
    """CVAT's `source`: manual for a human's region, CVAT's own source names kept, else auto."""
    return "manual" if region.source in (None, HUMAN) else region.source if region.source in _SOURCES else "auto"


class _Groups:
    """group_ids on one image: an object's own where it has one, else a new one above every
    group_id already there."""

    def __init__(self, regions: list[Region]):
        self._next = 1 + max((int(r.attributes.get("cvat.group_id", 0)) for r in regions), default=0)

    def of(self, region: Region) -> int:
        group = region.attributes.get("cvat.group_id")
        if not group:
            group, self._next = self._next, self._next + 1
        return group


def dump_shape(region: Region, width: int, height: int) -> str:
    attrs = region.attributes
    head = f"<{region.shape.value} label={quoteattr(region.label)} source={quoteattr(_source(region))}"
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
    groups = _Groups(regions)
    result = []
    for region in regions:
        if region.shape is Shape.POLYGON and len(region.points) > 1:
            # a group given already (shared with its keypoints' skeleton) holds
            attributes = {**region.attributes, "cvat.group_id": groups.of(region)}
            result += [Region(region.label, Shape.POLYGON, points=(ring,), source=region.source,
                              attributes=attributes) for ring in region.points]
        else:
            result.append(region)
    return result


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


def _label_attributes(dataset: Dataset) -> dict[str, dict[str, None]]:
    used: dict[str, dict[str, None]] = {name: {} for name in dataset.label_names}
    for item in dataset.items:
        for region in item.regions:
            used[region.label].update(dict.fromkeys(_public_attributes(region)))
    return used


def _keypoint_names(dataset: Dataset) -> dict[str, list[str]]:
    """Per label whose objects have keypoints, the sublabel names: the category's own (COCO
    `keypoints`), numbered where there are none or too few."""
    counts: dict[str, int] = {}
    for item in dataset.items:
        for region in item.regions:
            if region.keypoints:
                counts[region.label] = max(counts.get(region.label, 0), len(region.keypoints))
    declared = {c.name: [str(n) for n in c.attributes.get("keypoints") or []] for c in dataset.categories}
    return {label: (declared.get(label) or []) + [str(i + 1) for i in range(len(declared.get(label) or []), count)]
            for label, count in counts.items()}


def dump_skeleton(region: Region, names: list[str], group: int) -> str:
    source = _source(region)
    points = "".join(
        f'      <points label={quoteattr(name)} source={quoteattr(source)} outside="{int(v == 0)}" '
        f'occluded="{int(v == 1)}" points="{_number(x)},{_number(y)}" z_order="0"></points>\n'
        for name, (x, y, v) in zip(names, region.keypoints))
    return (f'    <skeleton label={quoteattr(region.label)} source={quoteattr(source)} '
            f'z_order="{int(region.attributes.get("z_order", 0))}" group_id="{group}">\n{points}    </skeleton>\n')


def _with_skeletons(regions: list[Region]) -> tuple[list[Region], list[tuple[Region, int]]]:
    """(the shapes to write, (object, group) per object with keypoints): each such object's shape
    (a box for keypoints alone) and its skeleton share a group_id."""
    groups = _Groups(regions)
    shapes, skeletons = [], []
    for region in regions:
        if not region.keypoints:
            shapes.append(region)
            continue
        group = groups.of(region)
        alone = region.shape is Shape.POINTS and region.box is not None
        shapes.append(dataclasses.replace(region, keypoints=(), shape=Shape.BOX if alone else region.shape,
                                          points=() if alone else region.points,
                                          attributes={**region.attributes, "cvat.group_id": group}))
        skeletons.append((region, group))
    return shapes, skeletons


def dump(dataset: Dataset) -> str:
    return "".join(dump_parts(dataset))


def dump_parts(dataset: Dataset) -> Iterator[str]:
    """The XML in pieces, image by image, so that a writer need not hold it all."""
    dataset = dataset.with_all_labels()
    keypoint_names = _keypoint_names(dataset)
    yield '<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n  <meta><task><labels>\n'
    for name, attributes in _label_attributes(dataset).items():
        declared = "".join(
            f"<attribute><name>{escape(a)}</name><mutable>False</mutable><input_type>text</input_type>"
            "<default_value></default_value><values></values></attribute>" for a in attributes
        )
        kind = "skeleton" if name in keypoint_names else "any"
        yield f"    <label><name>{escape(name)}</name><type>{kind}</type><attributes>{declared}</attributes></label>\n"
        yield from (f"    <label><name>{escape(point)}</name><type>points</type><attributes></attributes>"
                     f"<parent>{escape(name)}</parent></label>\n" for point in keypoint_names.get(name, []))
    yield "  </labels></task></meta>\n"
    for index, item in enumerate(dataset.items):
        image = item.image
        image_id = image.id if isinstance(image.id, int) else index
        subset = f' subset={quoteattr(str(image.attributes["subset"]))}' if "subset" in image.attributes else ""
        yield (f'  <image id="{image_id}" name={quoteattr(image.file_name)} width="{image.width}" '
               f'height="{image.height}"{subset}>\n')
        shapes, skeletons = _with_skeletons(item.regions)
        yield from (dump_shape(region, image.width, image.height) for region in _split_rings(shapes))
        yield from (dump_skeleton(region, keypoint_names[region.label], group) for region, group in skeletons)
        yield "  </image>\n"
    yield "</annotations>\n"


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
