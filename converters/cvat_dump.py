"""Writing CVAT for images 1.1 XML: pure functions from the canonical type to text (the quirks are
in converters.cvat's docstring), streamed in pieces so a large dataset is never one string."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator
from xml.sax.saxutils import escape, quoteattr

from .cvat_format import CONFIDENCE, HUMAN, SOURCES, crop_runs, mask_crop
from .types import Dataset, Region, Shape


def _number(value: float) -> str:
    return repr(float(value))


def _public_attributes(region: Region) -> dict[str, Any]:
    """The attributes written on a shape, and declared on its label: a region's score as
    `confidence`, where CVAT keeps it (it stores no score on shapes)."""
    public = {k: v for k, v in region.attributes.items() if "." not in k and k not in ("occluded", "z_order")}
    if region.confidence is not None:
        public.setdefault(CONFIDENCE, f"{region.confidence:.4f}")
    return public


def _attribute_text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _source(region: Region) -> str:
    """CVAT's `source`: manual for a human's region, CVAT's own source names kept, else auto."""
    return "manual" if region.source in (None, HUMAN) else region.source if region.source in SOURCES else "auto"


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
