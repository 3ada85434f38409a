"""Batch pre-annotation from Python: `AutoLabeler("yolo").predict(paths)` -> a Dataset."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

from openautoglm.converters import AnnotatedImage, AnnotationError, Dataset, ImageRecord, save
from openautoglm.converters.files import load_displayed
from openautoglm.converters.progress import track
from openautoglm.model.pipeline import Pipeline

log = logging.getLogger(__name__)


class AutoLabeler:
    """`AutoLabeler(model_name="yolo", device="cuda").predict(paths)`; `model=` is accepted as well."""

    def __init__(self, model_name: str | None = None, labels: Sequence[str] = (), device: str | None = None,
                 batch_size: int = 8, *, model: str | None = None):
        if model_name and model and model_name != model:
            raise TypeError(f"AutoLabeler got model_name={model_name!r} and model={model!r}: give one")
        self.pipeline = Pipeline.load(model_name or model or "yolo", device)  # loaded once, reused by every call
        self.labels = list(labels)
        self.batch_size = batch_size

    def predict(self, paths: Iterable[str | Path]) -> Dataset:
        """One item per readable image; unreadable ones are listed in attributes["failed"] with the reason."""
        paths = [Path(p) for p in paths]
        dataset = Dataset(attributes={"failed": []})
        batches = [paths[i:i + self.batch_size] for i in range(0, len(paths), self.batch_size)]
        for batch in track(batches, "predicting", total=len(batches)):
            images, records = [], []
            for path in batch:
                try:
                    image = load_displayed(path)
                except AnnotationError as error:
                    log.warning("%s: cannot read image: %s", path, error)
                    dataset.attributes["failed"].append({"file_name": str(path), "error": str(error)})
                    continue
                images.append(image)
                records.append(ImageRecord(len(dataset.items) + len(records) + 1, path.name, *image.size))
            for record, prediction in zip(records, self.pipeline.predict(images, self.labels) if images else []):
                dataset.items.append(AnnotatedImage(record, prediction.regions, prediction.score))
        return dataset.with_all_labels()


    # the seed API: labeler.save_to_coco(results, "annotations.json"), and the other formats alike
    def save_to_coco(self, results: Dataset, path: str | Path) -> None:
        save_to_coco(results, path)

    def save_to_yolo(self, results: Dataset, folder: str | Path) -> None:
        save_to_yolo(results, folder)

    def save_to_voc(self, results: Dataset, folder: str | Path) -> None:
        save_to_voc(results, folder)

    def save_to_label_studio(self, results: Dataset, path: str | Path) -> None:
        save_to_label_studio(results, path)

    def save_to_cvat(self, results: Dataset, path: str | Path) -> None:
        save_to_cvat(results, path)


def save_to_coco(dataset: Dataset, path: str | Path) -> None:
    save(dataset, Path(path), "coco")


def save_to_yolo(dataset: Dataset, folder: str | Path) -> None:
    save(dataset, Path(folder), "yolo")


def save_to_voc(dataset: Dataset, folder: str | Path) -> None:
    save(dataset, Path(folder), "voc")


def save_to_label_studio(dataset: Dataset, path: str | Path) -> None:
    save(dataset, Path(path), "label_studio")


def save_to_cvat(dataset: Dataset, path: str | Path) -> None:
    save(dataset, Path(path), "cvat")
