"""The subset (train/val/test split) of an item, as readers keep it in `image.attributes["subset"]`,
and file names that stay unique across subsets: a CVAT project holds `a.jpg` in Train and in Test."""

from __future__ import annotations

from collections import Counter
from pathlib import PurePosixPath

from .files import relative_name
from .types import AnnotatedImage

SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
          "test": "test", "testing": "test"}


def subset_of(item: AnnotatedImage) -> str | None:
    subset = item.image.attributes.get("subset")
    return str(subset) if subset not in (None, "") else None


def split_name(subset: str | None) -> str:
    """What ultralytics and VOC call a split: Train, Validation, Test -> train, val, test."""
    return SPLITS.get((subset or "train").lower(), subset or "train")


def unique_stems(items: list[AnnotatedImage]) -> list[PurePosixPath]:
    """Each item's path without suffix; where several items share one, each goes under its subset's
    folder (and a numbered one if they share the subset too), so no item overwrites another."""
    stems = [relative_name(item.image.file_name).with_suffix("") for item in items]
    shared = {stem for stem, count in Counter(stems).items() if count > 1}
    placed = [PurePosixPath(subset_of(item) or "default", stem) if stem in shared else stem
              for item, stem in zip(items, stems)]
    seen: Counter = Counter()
    unique = []
    for stem in placed:
        seen[stem] += 1
        unique.append(stem if seen[stem] == 1 else stem.with_name(f"{stem.name}_{seen[stem]}"))
    return unique
