"""What the server needs from a pipeline, as a Protocol: `model.inference.pipeline.Pipeline`
implements all of it, and so does the test fake, so no adapter probes a pipeline for a part."""

from __future__ import annotations

from typing import Protocol, Sequence

from PIL import Image

from openautoglm.converters import Region
from openautoglm.model.inference.clicks import Click
from openautoglm.model.inference.interface import Segmenter
from openautoglm.model.scores.calibration import CURRENT, Calibration
from openautoglm.model.scores.scoring import ImagePrediction


class ServedPipeline(Protocol):
    name: str  # the pipeline's name: where each project's refitted calibration is kept
    version: str  # the weights: reviews and calibrations are kept per version
    model_version: str  # the version and its own calibration's digest (a project's refit has its own)
    calibration: Calibration | None  # as loaded: what CVAT is served, and the prior of every project's refit
    segmenter: Segmenter | None
    vocabulary: tuple[str, ...] | None  # closed-set class names; None for open vocabulary
    display_threshold: float
    cascade_below: float | None

    def predict(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict[str, list[str]] | None = None, *,
                calibration: Calibration | None | str = CURRENT) -> list[ImagePrediction]:
        ...

    def objects_at(self, image: Image.Image, clicks: Sequence[Click], labels: Sequence[str],
                   synonyms: dict[str, list[str]] | None = None) -> list[Region]:
        ...
