"""/predict as three steps: decode (tasks -> images), propose (model batches), encode (regions ->
Label Studio results). Every task gets exactly one entry, in order; a task whose image fails gets
`result: []` and score 0.0 so it sorts first for a human."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from PIL import Image

from openautoglm.converters import Box, Region
from openautoglm.converters import label_studio_config as label_config
from openautoglm.model.inference.clicks import Click
from openautoglm.model.inference.labels import merge_synonyms
from openautoglm.model.scores import scoring
from openautoglm.model.scores.calibration import CURRENT, Calibration

from ..batching import DynamicBatcher, ModelCalls
from ..served import ServedPipeline
from .images import ImageFetcher, ImageFetchError
from .project_calibrations import ProjectCalibrations

log = logging.getLogger(__name__)


@dataclass
class TaskOutcome:
    task_id: Any
    result: list[dict]
    score: float
    regions: list[Region]  # what was predicted, kept for matching reviews later
    error: str | None = None
    evidence: scoring.ImageEvidence = field(default_factory=scoring.ImageEvidence)  # kept for refitting
    second_stage_seconds: float = 0.0
    size: tuple[int, int] | None = None  # the image's (width, height), for reviews whose results lack it
    model_version: str = ""  # the weights and the calibration the task was scored with


class Predictor:
    def __init__(self, pipeline: ServedPipeline, fetcher: ImageFetcher, batch_size: int = 8,
                 synonyms: dict | None = None, batch_wait_ms: float = 0.0, max_batch: int = 32,
                 calibrations: ProjectCalibrations | None = None):
        """`calibrations`: each project's own (None: the pipeline's for every project, as when
        OPENAUTOGLM_CALIBRATION pins one)."""
        self.pipeline, self.fetcher, self.batch_size = pipeline, fetcher, batch_size
        self.calibrations = calibrations
        self.synonyms = synonyms or {}
        self.calls = ModelCalls(max_batch, batch_wait_ms)  # shared with the CVAT routes
        self.model_lock = self.calls.lock  # one inference at a time per worker: models are not thread-safe

    @property
    def batcher(self) -> DynamicBatcher | None:
        """The served pipeline's batcher when batching is on (its counts say how full batches were)."""
        return self.calls.batcher(self.pipeline) if self.calls.max_wait_ms > 0 else None

    @property
    def model_version(self) -> str:
        """The pipeline's own: what a project without a refit of its own is served."""
        return self.pipeline.model_version

    def scoring(self, project: object) -> tuple[Calibration | None | str, str]:
        """(the calibration a project's tasks are scored with, the model version saying so)."""
        if self.calibrations is None:
            return CURRENT, self.pipeline.model_version
        return self.calibrations.scoring(project)

    def project_versions(self) -> dict[str, str]:
        """Each project with a calibration of its own -> its model version."""
        return {} if self.calibrations is None else self.calibrations.own_versions()

    def predict(self, tasks: Sequence[dict], config: str, context: dict | None = None,
                project: object = None) -> list[TaskOutcome]:
        if not tasks:
            return []
        calibration, version = self.scoring(project)  # one for the request, even if a refit lands meanwhile
        targets = label_config.parse(config)
        labels = sorted({label for target in targets for label in target.labels})
        # a click's answer is its object's box or mask: the keypoint the annotator clicked is theirs already
        answered = ([t for t in targets if t.kind != "keypointlabels"] or targets) if context else targets
        synonyms = merge_synonyms(self.synonyms, *({k: v} for t in targets for k, v in t.labels.items()))
        outcomes: list[TaskOutcome | None] = [None] * len(tasks)
        loaded: list[tuple[int, Image.Image]] = []
        for index, task in enumerate(tasks):
            try:
                loaded.append((index, self._decode(task, targets)))
            except ImageFetchError as error:
                task_id = task.get("id") if isinstance(task, dict) else None
                log.warning("task %s: %s", task_id, error)
                outcomes[index] = TaskOutcome(task_id, [], 0.0, [], str(error), model_version=version)
        for start in range(0, len(loaded), self.batch_size):
            batch = loaded[start:start + self.batch_size]
            images = [image for _, image in batch]
            if not labels:
                predictions = [scoring.ImagePrediction([], 1.0) for _ in images]
            elif context:  # a draft for the annotator, never stored
                predictions = [self._interactive(image, context, labels, synonyms) for image in images]
            else:  # grouped with other requests' images into one model batch where batching is on
                predictions = self.calls.predict(self.pipeline, images, labels, synonyms, calibration)
            for (index, image), prediction in zip(batch, predictions):
                regions, score = prediction.regions, prediction.score
                task = tasks[index]
                result = label_config.encode_regions(regions, answered, *image.size, task.get("id"))
                outcomes[index] = TaskOutcome(task.get("id"), result, score, regions, evidence=prediction.evidence,
                                              second_stage_seconds=prediction.second_stage_seconds, size=image.size,
                                              model_version=version)
        return outcomes

    def _decode(self, task: dict, targets: Sequence[label_config.Target]) -> Image.Image:
        if not isinstance(task, dict):
            raise ImageFetchError(f"a task must be a JSON object, not {type(task).__name__}")
        data = task.get("data")
        if not isinstance(data, dict):
            raise ImageFetchError("task has no data")
        keys = [t.data_key for t in targets] or ["image"]
        url = next((data[k] for k in keys if isinstance(data.get(k), str)), None)
        if url is None:
            raise ImageFetchError(f"task data has no image URL under {keys[0]!r}")
        return self.fetcher.fetch(url)

    def _interactive(self, image: Image.Image, context: dict, labels: list[str],
                     synonyms: dict) -> scoring.ImagePrediction:
        """What the annotator drew (positive keypoints, rectangles) -> the objects they point at,
        found even where the detector did not show them (`Pipeline.objects_at`); scored by the
        least sure of them."""
        width, height = image.size
        clicks = []
        for drawn in context.get("result") or []:
            value = drawn.get("value") or {}
            label = next(iter(value.get(drawn.get("type", ""), []) or []), None)
            x, y = value.get("x", 0) * width / 100, value.get("y", 0) * height / 100
            if drawn.get("type") == "rectanglelabels":
                box = Box(x, y, x + value.get("width", 0) * width / 100, y + value.get("height", 0) * height / 100)
                clicks.append(Click((box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2, label, drawn=box))
            elif drawn.get("type") == "keypointlabels" and drawn.get("is_positive", True):
                clicks.append(Click(x, y, label))
        found = []
        if clicks:
            with self.model_lock:
                found = self.pipeline.objects_at(image, clicks, labels, synonyms)
        return scoring.ImagePrediction(found, min((r.confidence for r in found), default=1.0))
