"""Pascal VOC XML (one Annotations/<name>.xml per image), optional SegmentationObject PNGs.

Quirks kept: VOC boxes are 1-based and inclusive (a box on pixel 0 only is xmin=1, xmax=1), so
x1 = xmin - 1 and x2 = xmax; files written by CVAT or datumaro are 0-based with an exclusive end
and are read with `zero_based=True`. Coordinates are integers, so writing rounds to whole pixels.
`difficult`, `truncated`, `occluded` and `pose` are kept as region attributes, CVAT's
`<attributes>` block as free attributes. A SegmentationObject PNG holds object i as value i + 1.
"""

from __future__ import annotations

import functools
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from . import progress
from .fields import parse_float, parse_int
from .files import atomic_directory, displayed_size, find_image, link_or_copy, relative_name
from .geometry import polygons_to_mask
from .parallel import mask_count, ordered_map
from .skipping import element
from .subsets import split_name, subset_of, unique_stems
from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape
from .voc_image_sets import image_labels, listed_ids

NAME = "voc"
_FLAGS = ("difficult", "truncated", "occluded")
PART_OF = "voc.part_of"  # a <part> (head, hand, foot) of the image's n-th <object>, 1-based


def parse_annotation(text: str, zero_based: bool = False, measure=None) -> AnnotatedImage:
    """`measure(file_name) -> (width, height)`: asked when the file gives no size (no <size>, or
    zeros, as some tools write), so the image itself is measured instead."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise AnnotationError(f"invalid XML: {error}") from None
    file_name = (root.findtext("filename") or "").strip()
    size = root.find("size")
    given = size is not None and all((size.findtext(k) or "").strip() not in ("", "0") for k in ("width", "height"))
    if given:
        width = parse_int(size.findtext("width"), "<size><width>")
        height = parse_int(size.findtext("height"), "<size><height>")
    elif measure is not None:
        width, height = measure(file_name)
    else:
        raise AnnotationError("missing <size> (width and height are required)")
    folder = (root.findtext("folder") or "").strip()
    image = ImageRecord(None, file_name, width, height, {"voc.folder": folder} if folder else {})
    offset = 0.0 if zero_based else 1.0
    regions, body_parts = [], []
    for index, obj in enumerate(root.iter("object")):
        with element(f"<object> {index + 1}"):
            regions.append(_parse_object(obj, offset))
            for number, part in enumerate(obj.findall("part"), 1):
                with element(f"<part> {number}"):
                    body_parts.append(Region(_name(part), Shape.BOX, _parse_box(part, offset),
                                             attributes={PART_OF: len(regions)}))
    # parts after every object: a SegmentationObject PNG numbers the objects alone
    return AnnotatedImage(image, regions + body_parts)


def _name(element: ET.Element) -> str:
    label = (element.findtext("name") or "").strip()
    if not label:
        raise AnnotationError("missing <name>")
    return label


def _parse_box(element: ET.Element, offset: float) -> Box:
    bndbox = element.find("bndbox")
    if bndbox is None:
        raise AnnotationError("missing <bndbox>")
    xmin, ymin, xmax, ymax = (parse_float(bndbox.findtext(k), f"<{k}>") for k in ("xmin", "ymin", "xmax", "ymax"))
    if offset and min(xmin, ymin) < 1:  # read as 1-based, a 0 would become -1: the file is 0-based
        raise AnnotationError(f"<xmin>/<ymin> {min(xmin, ymin):g} is below 1, so this is a 0-based export (CVAT, "
                              "datumaro); read it with --voc-zero-based")
    return Box(xmin - offset, ymin - offset, xmax, ymax)


def _parse_object(obj: ET.Element, offset: float) -> Region:
    label, box = _name(obj), _parse_box(obj, offset)
    attributes: dict = {}
    for flag in _FLAGS:
        text = obj.findtext(flag)
        if text is not None and text.strip() not in ("", "0", "false", "False"):
            attributes[flag] = True
    pose = (obj.findtext("pose") or "").strip()
    if pose and pose != "Unspecified":
        attributes["pose"] = pose
    for attribute in obj.findall("attributes/attribute"):
        attributes[(attribute.findtext("name") or "").strip()] = (attribute.findtext("value") or "").strip()
    return Region(label, Shape.BOX, box, attributes=attributes)


def dump_annotation(item: AnnotatedImage) -> str:
    image = item.image
    name = PurePosixPath(image.file_name).name
    segmented = any(r.shape in (Shape.POLYGON, Shape.MASK) for r in item.regions)
    parts = [
        "<annotation>\n",
        f"  <folder>{escape(str(image.attributes.get('voc.folder', '')))}</folder>\n",
        f"  <filename>{escape(name)}</filename>\n",
        f"  <size><width>{image.width}</width><height>{image.height}</height><depth>3</depth></size>\n",
        f"  <segmented>{int(segmented)}</segmented>\n",
    ]
    shown = [r for r in item.regions if r.shape is not Shape.TAG]
    objects = [r for r in shown if PART_OF not in r.attributes]
    body_parts: dict[int, list[Region]] = {}
    orphans = []  # a part whose object is not there is written as an object, after the real ones
    for region in shown:
        number = region.attributes.get(PART_OF)
        if isinstance(number, int) and 1 <= number <= len(objects):
            body_parts.setdefault(number, []).append(region)
        elif number is not None:
            orphans.append(region)
    objects += orphans
    for number, region in enumerate(objects, 1):
        attributes = dict(region.attributes)
        flags = "".join(f"<{f}>{int(bool(attributes.pop(f, False)))}</{f}>" for f in _FLAGS)
        pose = escape(str(attributes.pop("pose", "Unspecified")))
        extra = "".join(
            f"<attribute><name>{escape(str(k))}</name><value>{escape(str(v))}</value></attribute>"
            for k, v in attributes.items() if "." not in k
        )
        parts.append(
            f"  <object><name>{escape(region.label)}</name><pose>{pose}</pose>{flags}{_bndbox(region.box)}"
            + (f"<attributes>{extra}</attributes>" if extra else "")
            + "".join(f"<part><name>{escape(p.label)}</name>{_bndbox(p.box)}</part>"
                      for p in body_parts.get(number, []))
            + "</object>\n"
        )
    parts.append("</annotation>\n")
    return "".join(parts)


def _bndbox(box: Box) -> str:
    x1, y1, x2, y2 = box.bounds()
    return (f"<bndbox><xmin>{round(x1) + 1}</xmin><ymin>{round(y1) + 1}</ymin>"
            f"<xmax>{round(x2)}</xmax><ymax>{round(y2)}</ymax></bndbox>")


def _stem(file_name: str) -> PurePosixPath:
    return relative_name(file_name).with_suffix("")


def _read_label_order(root: Path) -> list[str]:
    for name in ("labels.txt", "labelmap.txt"):
        path = root / name
        if path.is_file():
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            # labelmap.txt (datumaro, CVAT) lines are `name:color:parts:actions`.
            return [line.split(":")[0] for line in lines if line and not line.startswith("#")]
    return []


def read(path: Path, images_dir: Path | None = None, zero_based: bool = False) -> Dataset:
    root = Path(path)
    if root.is_file():  # one annotation file
        annotations_dir, xml_paths, root = root.parent, [root], root.parent.parent
    else:
        annotations_dir = root / "Annotations" if (root / "Annotations").is_dir() else root
        xml_paths = sorted(annotations_dir.rglob("*.xml"))
    order = _read_label_order(root)
    items, annotated = [], set()
    for xml_path in progress.track(xml_paths, "reading VOC"):
        stem = xml_path.relative_to(annotations_dir).with_suffix("")
        with element(str(xml_path)):
            item = parse_annotation(xml_path.read_text(encoding="utf-8"), zero_based,
                                    lambda name, stem=stem: _measure(root, images_dir, stem, name))
            file_name = str(PurePosixPath(*stem.parts[:-1], item.image.file_name or f"{stem.name}.jpg"))
            item.image = ImageRecord(None, file_name, item.image.width, item.image.height, item.image.attributes)
            _attach_masks(item, root / "SegmentationObject" / stem.with_suffix(".png"))
            items.append(item)
        annotated.add(stem.as_posix())
    if not Path(path).is_file():
        items += _unannotated(root, images_dir, annotated)
        _add_image_labels(items, root, order)
    labels = order + sorted({r.label for i in items for r in i.regions} - set(order))
    return Dataset([Category(n) for n in labels], items)


def _unannotated(root: Path, images_dir: Path | None, annotated: set[str]) -> list[AnnotatedImage]:
    """The images ImageSets lists that have no annotation file: images with no objects."""
    folders = [Path(images_dir)] if images_dir is not None else [root / "JPEGImages", root]
    items = []
    for image_id in listed_ids(root):
        if image_id in annotated:
            continue
        with element(f"ImageSets: {image_id}"):
            found = next((f for f in (find_image(folder, image_id) for folder in folders) if f is not None), None)
            if found is None:
                raise AnnotationError(f"listed in ImageSets without an annotation file, and no image of it is in "
                                      f"{' or '.join(map(str, folders))} (give --images)")
            items.append(AnnotatedImage(ImageRecord(None, found.name, *displayed_size(found))))
    return items


def _add_image_labels(items: list[AnnotatedImage], root: Path, order: list[str]) -> None:
    """ImageSets/Main's per-class lists as tags, where no object of the class is in the image."""
    present = image_labels(root, order + sorted({r.label for i in items for r in i.regions}))
    for item in items:
        shown = {r.label for r in item.regions}
        for label in sorted(present.get(PurePosixPath(item.image.file_name).stem, set()) - shown):
            item.regions.append(Region(label, Shape.TAG))


def _measure(root: Path, images_dir: Path | None, stem: PurePosixPath, file_name: str) -> tuple[int, int]:
    """The size of the image an annotation without <size> is about, as displayed."""
    folders = [Path(images_dir)] if images_dir is not None else [root / "JPEGImages", root]
    names = [PurePosixPath(file_name).stem] if file_name else []
    for folder in folders:
        for name in names + [stem.name]:
            found = find_image(folder / stem.parent, name)
            if found is not None:
                return displayed_size(found)
    raise AnnotationError(f"missing <size>, and the image {file_name or stem.name} is not in "
                          f"{' or '.join(str(f / stem.parent) for f in folders)} to measure it (give --images)")


def _voc_colours() -> np.ndarray:
    """The VOC devkit's colour map: index i gets the colour built from i's bits, high bit first."""
    colours = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, red, green, blue = index, 0, 0, 0
        for shift in range(7, -1, -1):
            red |= (value & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        colours[index] = red, green, blue
    return colours


def _instance_indices(image: Image.Image, png: Path) -> np.ndarray:
    """Object indices from a SegmentationObject PNG: palette PNGs (the devkit's) hold them
    directly; an RGB one (re-saved by an editor) is mapped back through the VOC colour map."""
    if image.mode in ("P", "L", "I", "I;16"):
        return np.asarray(image)
    rgb = np.asarray(image.convert("RGB")).astype(np.uint32)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours = _voc_colours().astype(np.uint32)
    lookup = dict(zip(((colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]).tolist(), range(256)))
    found, inverse = np.unique(keys, return_inverse=True)
    unknown = [f"#{k:06x}" for k in found.tolist() if k not in lookup]
    if unknown:
        raise AnnotationError(f"RGB instance mask has colours outside the VOC colour map: {', '.join(unknown[:5])}",
                              str(png))
    return np.array([lookup[k] for k in found.tolist()], dtype=np.uint8)[inverse].reshape(keys.shape)


def _attach_masks(item: AnnotatedImage, png: Path) -> None:
    if not png.is_file():
        return
    with Image.open(png) as image:
        instances = _instance_indices(image, png)
    if instances.shape[:2] != (item.image.height, item.image.width):
        raise AnnotationError(
            f"mask is {instances.shape[1]}x{instances.shape[0]} "
            f"but the image is {item.image.width}x{item.image.height}",
            str(png),
        )
    for index, region in enumerate(item.regions):
        bitmap = instances == index + 1
        if bitmap.any():
            item.regions[index] = Region(
                region.label, Shape.MASK, region.box, mask=Mask.from_array(bitmap), attributes=region.attributes
            )


def write(dataset: Dataset, path: Path, images_dir: Path | None = None) -> None:
    dataset = dataset.with_all_labels()
    with atomic_directory(Path(path)) as out:
        (out / "labels.txt").write_text("".join(f"{n}\n" for n in dataset.label_names), encoding="utf-8")
        by_split: dict[str, list[str]] = {}
        stems = unique_stems(dataset.items)  # a.jpg in two subsets: Train/a.xml and Test/a.xml
        # the XML and the instance PNG (the mask work) over processes when masks are many
        written = ordered_map(functools.partial(_write_files, stems=stems, out=out), dataset.items,
                              mask_count(dataset.items))
        for item, stem, _ in zip(progress.track(dataset.items, "writing VOC"), stems, written):
            subset = subset_of(item)
            by_split.setdefault(split_name(subset) if subset else "default", []).append(str(stem))
            if images_dir is not None:
                _copy_image(Path(images_dir), item.image.file_name, subset, out / "JPEGImages" / stem.parent)
        main = out / "ImageSets" / "Main"
        main.mkdir(parents=True)
        for split, names in (by_split or {"default": []}).items():
            (main / f"{split}.txt").write_text("".join(f"{s}\n" for s in names), encoding="utf-8")


def _write_files(index: int, item: AnnotatedImage, stems: list[PurePosixPath], out: Path) -> None:
    stem = stems[index]
    xml_path = out / "Annotations" / stem.with_suffix(".xml")
    xml_path.parent.mkdir(parents=True, exist_ok=True)
    xml_path.write_text(dump_annotation(item), encoding="utf-8")
    _write_instance_png(item, out / "SegmentationObject" / stem.with_suffix(".png"))


def _write_instance_png(item: AnnotatedImage, png: Path) -> None:
    drawable = [(i, r) for i, r in enumerate(item.regions) if r.shape in (Shape.POLYGON, Shape.MASK)]
    if not drawable:
        return
    if len(item.regions) > 254:
        raise AnnotationError("VOC instance PNGs hold at most 254 objects per image", item.image.file_name)
    instances = np.zeros((item.image.height, item.image.width), dtype=np.uint8)
    for index, region in drawable:
        mask = region.mask or polygons_to_mask(region.points, item.image.width, item.image.height)
        instances[mask.to_array()] = index + 1
    png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(instances, mode="L").save(png, compress_level=1)  # level 1: 4x faster, files ~1.3x larger


def _copy_image(images_dir: Path, file_name: str, subset: str | None, target_dir: Path) -> None:
    """The image from `images_dir/<subset>/` (a CVAT project export's layout) or `images_dir/`."""
    stem = _stem(file_name)
    folders = ([images_dir / subset / stem.parent] if subset else []) + [images_dir / stem.parent]
    source = next((found for folder in folders if (found := find_image(folder, stem.name)) is not None), None)
    if source is None:
        raise AnnotationError("image not found", str(images_dir / file_name))
    link_or_copy(source, target_dir / source.name)
