"""YOLO label lines: the boxes-only writer gives the general writer's bytes; two images of one name
in a split are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openautoglm.converters import AnnotationError, Box, Region, Shape
from openautoglm.converters.types import AnnotatedImage, Category, Dataset, ImageRecord
from openautoglm.converters.yolo import write
from openautoglm.converters.yolo_lines import dump_labels

coordinate = st.floats(0, 4000, allow_nan=False)


@given(st.lists(st.tuples(coordinate, coordinate, coordinate, coordinate, st.sampled_from(["a", "b"])), max_size=8),
       st.integers(1, 5000), st.integers(1, 5000))
def test_boxes_only_lines_are_the_general_paths_bytes(boxes, width, height) -> None:
    regions = [Region(label, box=Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)))
               for x1, y1, x2, y2, label in boxes] + [Region("a", Shape.TAG)]
    index = {"a": 0, "b": 1}
    # save_conf takes the general path; without scores it adds nothing to a line
    assert dump_labels(regions, index, width, height, "detect") == \
        dump_labels(regions, index, width, height, "detect", save_conf=True)


def test_two_images_of_one_name_in_a_split_are_refused(tmp_path: Path) -> None:
    items = [AnnotatedImage(ImageRecord(i, "a.jpg", 10, 10), [Region("a", box=Box(1, 1, 2, 2))]) for i in (1, 2)]
    dataset = Dataset([Category("a")], items)
    write(Dataset([Category("a")], items[:1]), tmp_path / "one")
    assert (tmp_path / "one" / "labels" / "train" / "a.txt").read_text().startswith("0 0.15 0.15 0.1 0.1")
    with pytest.raises(AnnotationError, match="two images named a.jpg in split train"):
        write(dataset, tmp_path / "two")
    assert not (tmp_path / "two").exists()  # nothing half-written
