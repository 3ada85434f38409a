"""Batch pre-annotation from Python: `AutoLabeler("yolo").predict(paths)` -> a Dataset."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from openautoglm.converters import AnnotatedImage, AnnotationError, Dataset, ImageRecord, save
from openautoglm.converters.files import load_displayed
from openautoglm.converters.progress import track
from openautoglm.model.inference.pipeline import Pipeline
from openautoglm.model.inference.settings import ModelSettings

log = logging.getLogger(__name__)


class LabelerArguments(NamedTuple):
    """What an AutoLabeler is built from: worker processes and Ray actors each build their own."""
    model: str
    labels: tuple[str, ...] = ()
    device: str | None = None
    batch_size: int = 8
    settings: ModelSettings | None = None
    synonyms: dict[str, list[str]] | None = None  # other names a model may use for a project label


class AutoLabeler:
    """`AutoLabeler(model_name="yolo", device="cuda").predict(paths)`; `model=` is accepted as well."""

    def __init__(self, model_name: str | None = None, labels: Sequence[str] = (), device: str | None = None,
                 batch_size: int = 8, settings: ModelSettings | None = None,
                 synonyms: dict[str, list[str]] | None = None, *, model: str | None = None):
        """`settings`: where weights are and the rest (default: read from the environment)."""
        if model_name and model and model_name != model:
            raise TypeError(f"AutoLabeler got model_name={model_name!r} and model={model!r}: give one")
        # loaded once, reused by every call
        settings = settings or ModelSettings.from_env()
        self.pipeline = Pipeline.load(model_name or model or "yolo", device, settings=settings)
        self.max_pixels = settings.max_pixels
        self.labels = list(labels)
        self.synonyms = synonyms or {}
        self.batch_size = batch_size

    def predict(self, paths: Iterable[str | Path]) -> Dataset:
        """One item per readable image; unreadable ones are listed in attributes["failed"] with the reason."""
        dataset = Dataset(attributes={"failed": []})
        for path, item, error in track(self.stream(paths), "predicting", total=_count(paths)):
            if error is not None:
                dataset.attributes["failed"].append({"file_name": str(path), "error": error})
            else:
                item.image = ImageRecord(len(dataset.items) + 1, item.image.file_name, item.image.width,
                                         item.image.height, item.image.attributes)
                dataset.items.append(item)
        return dataset.with_all_labels()

    def stream(self, paths: Iterable[str | Path]) -> Iterator[tuple[Path, AnnotatedImage | None, str | None]]:
        """(path, its prediction, None) or (path, None, why it failed) per image, in order, a batch
        at a time: nothing is kept once yielded, so callers can write results as they come."""
        batch: list[Path] = []
        for path in map(Path, paths):
            batch.append(path)
            if len(batch) == self.batch_size:
                yield from self._batch(batch)
                batch = []
        if batch:
            yield from self._batch(batch)

    def _batch(self, paths: list[Path]) -> Iterator[tuple[Path, AnnotatedImage | None, str | None]]:
        images, readable = [], []
        results: list[tuple] = [()] * len(paths)
        for index, path in enumerate(paths):
            try:
                images.append(load_displayed(path, max_pixels=self.max_pixels))
                readable.append(index)
            except AnnotationError as error:
                log.warning("%s: cannot read image: %s", path, error)
                results[index] = (path, None, str(error))
        predictions = self.pipeline.predict(images, self.labels, self.synonyms) if images else []
        for index, image, prediction in zip(readable, images, predictions):
            record = ImageRecord(None, paths[index].name, *image.size, {"model_version": self.pipeline.model_version})
            results[index] = (paths[index], AnnotatedImage(record,
                                                           prediction.regions, prediction.score), None)
        yield from results

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

    def save_to_labelme(self, results: Dataset, folder: str | Path) -> None:
        save_to_labelme(results, folder)


def _count(paths) -> int | None:
    return len(paths) if hasattr(paths, "__len__") else None


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


def save_to_labelme(dataset: Dataset, folder: str | Path) -> None:
    save(dataset, Path(folder), "labelme")
