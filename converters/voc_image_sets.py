"""VOC's ImageSets lists, read beside the annotations: `ImageSets/<task>/<split>.txt` names the
images of a split one id a line (an image listed without an annotation file is an image with no
objects, not nothing), and `ImageSets/Main/<class>_<split>.txt` says per image whether the class
is in it (`1`), absent (`-1`) or difficult (`0`): an image-level label, kept as a tag where no
object of the class says so already."""

from __future__ import annotations

from pathlib import Path

SPLIT_TASKS = ("Main", "Segmentation", "Layout", "Action")


def listed_ids(root: Path) -> list[str]:
    """Every image id the split lists name, in first-seen order."""
    ids: dict[str, None] = {}
    for task in SPLIT_TASKS:
        folder = root / "ImageSets" / task
        for path in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
            if "_" in path.stem:  # <class>_<split>.txt: per-class lists, read by image_labels
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    ids.setdefault(line.split()[0], None)
    return list(ids)


def image_labels(root: Path, classes: list[str]) -> dict[str, set[str]]:
    """Image id -> the classes its per-class lists mark present (`1`)."""
    folder = root / "ImageSets" / "Main"
    present: dict[str, set[str]] = {}
    for path in sorted(folder.glob("*_*.txt")) if folder.is_dir() else []:
        label = next((c for c in sorted(classes, key=len, reverse=True) if path.stem.startswith(f"{c}_")), None)
        if label is None:
            label = path.stem.rsplit("_", 1)[0]
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == "1":
                present.setdefault(parts[0], set()).add(label)
    return present
