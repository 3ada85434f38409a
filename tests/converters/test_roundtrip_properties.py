"""Round trips through every pair of formats that can represent the generated data.

ds -> A -> read -> B -> read must give back ds: same images, object counts, labels, coordinates
within 1e-6 px (formats with integer coordinates get integer data), masks pixel-identical.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from openautoglm.converters import AnnotatedImage, Box, Category, Dataset, ImageRecord, Mask, Region, Shape, load, save
from tests.equivalence import assert_equivalent

LABELS = ["person", "traffic light", "Ünïcode", "a&b<c>"]

# scenario -> formats that represent it exactly
SCENARIOS = {
    "integer_boxes": ["coco", "voc", "yolo", "label_studio", "cvat"],
    "float_boxes": ["coco", "yolo", "label_studio", "cvat"],
    "rotated_boxes": ["coco", "yolo", "label_studio", "cvat"],
    "polygons": ["coco", "yolo", "label_studio", "cvat"],
    "masks": ["coco", "voc", "label_studio", "cvat"],
}
SUFFIX = {"coco": ".json", "label_studio": ".json", "cvat": ".xml", "voc": "", "yolo": ""}


@st.composite
def regions(draw, scenario: str, width: int, height: int, slot: tuple[int, int]) -> Region:
    label = draw(st.sampled_from(LABELS))
    if scenario == "integer_boxes":
        x1, y1 = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        return Region(label, box=Box(x1, y1, draw(st.integers(x1 + 1, width)), draw(st.integers(y1 + 1, height))))
    if scenario in ("float_boxes", "rotated_boxes"):
        x1 = draw(st.floats(0, width - 1))
        y1 = draw(st.floats(0, height - 1))
        x2 = draw(st.floats(x1 + 0.5, width))
        y2 = draw(st.floats(y1 + 0.5, height))
        rotation = draw(st.floats(1, 359)) if scenario == "rotated_boxes" else 0.0
        return Region(label, box=Box(x1, y1, x2, y2, rotation))
    if scenario == "polygons":
        points = draw(st.lists(st.tuples(st.floats(0, width), st.floats(0, height)), min_size=3, max_size=8))
        return Region(label, Shape.POLYGON, points=(tuple(points),))
    # masks: each region owns a vertical strip so masks never overlap (VOC stores one index per pixel)
    left, right = slot
    bitmap = np.zeros((height, width), dtype=bool)
    for _ in range(draw(st.integers(1, 3))):
        x1 = draw(st.integers(left, right - 1))
        y1 = draw(st.integers(0, height - 1))
        bitmap[y1:draw(st.integers(y1 + 1, height)), x1:draw(st.integers(x1 + 1, right))] = True
    return Region(label, Shape.MASK, mask=Mask.from_array(bitmap))


@st.composite
def datasets(draw, scenario: str) -> Dataset:
    items = []
    for index in range(draw(st.integers(1, 3))):
        width, height = draw(st.integers(8, 120)), draw(st.integers(8, 120))
        count = draw(st.integers(0, 4))
        slots = [(i * width // 4, (i + 1) * width // 4) for i in range(4)]
        found = [draw(regions(scenario, width, height, slots[i])) for i in range(count)]
        items.append(AnnotatedImage(ImageRecord(index + 1, f"img_{index}.png", width, height), found))
    return Dataset([Category(name) for name in LABELS], items)


def _write_images(dataset: Dataset, directory: Path) -> None:
    for item in dataset.items:
        Image.new("RGB", (item.image.width, item.image.height)).save(directory / item.image.file_name)


def _through(dataset: Dataset, fmt: str, work: Path, images: Path) -> Dataset:
    out = work / f"{fmt}{SUFFIX[fmt]}"
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    save(dataset, out, fmt)
    return load(out, fmt, images)


PAIRS = [pytest.param(s, a, b, id=f"{s}-{a}-{b}") for s, fmts in SCENARIOS.items()
         for a, b in itertools.product(fmts, repeat=2)]


@pytest.mark.parametrize("scenario, first, second", PAIRS)
def test_round_trip_through_pair(scenario: str, first: str, second: str) -> None:
    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(datasets(scenario))
    def check(dataset: Dataset) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            images = work / "images"
            images.mkdir()
            _write_images(dataset, images)
            via_first = _through(dataset, first, work / "a", images)
            via_second = _through(via_first, second, work / "b", images)
            assert_equivalent(dataset, via_second, tolerance=1e-6)

    check()
