"""What every proposer and segmenter is: a frozen, validated spec plus one batched call.

A proposer takes a batch of images (PIL, RGB, as displayed) and the project's label names and
returns, per image, canonical Regions: label (a project label), box, optional mask and the raw
score (candidates below the display threshold kept as evidence carry `attributes["near_miss"]`).
`propose` is batched; a batch gives the same result as calling it image by image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

from PIL import Image

from openautoglm.converters import Box, Mask, Region
from openautoglm.model.errors import ModelError


@dataclass(frozen=True)
class ProposerSpec:
    name: str  # registry name or path, e.g. "yolov8n"
    version: str  # identifies the weights, e.g. a file digest prefix or a hub revision
    family: str  # "ultralytics", "yolox", "zero-shot", "vlm"
    vocabulary: tuple[str, ...] | None = None  # closed-set class names; None for open vocabulary

    def __post_init__(self) -> None:
        for field_name in ("name", "version", "family"):
            if not isinstance(getattr(self, field_name), str) or not getattr(self, field_name):
                raise ModelError(f"proposer spec needs a non-empty {field_name}")
        if self.vocabulary is not None and not all(isinstance(v, str) and v for v in self.vocabulary):
            raise ModelError(f"proposer {self.name}: vocabulary must be non-empty names")

    @property
    def source(self) -> str:
        """The `source` written on every region: name@version."""
        return f"{self.name}@{self.version}"


@runtime_checkable
class Proposer(Protocol):
    spec: ProposerSpec

    def propose(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict[str, list[str]] | None = None) -> list[list[Region]]:
        """`synonyms` adds, for this call, other names a model may use for a project label."""
        ...


@runtime_checkable
class Segmenter(Protocol):
    name: str

    def segment(self, image: Image.Image, boxes: Sequence[Box]) -> list[tuple[Mask, float]]:
        """One (mask, mask score in [0, 1]) per box, in order."""
        ...


def check_proposals(spec: ProposerSpec, images: Sequence[Image.Image], labels: Sequence[str],
                    proposals: list[list[Region]]) -> list[list[Region]]:
    """Re-check what a proposer returned, so a faulty model fails loudly and precisely."""
    if len(proposals) != len(images):
        raise ModelError(f"{spec.source}: returned {len(proposals)} results for {len(images)} images")
    allowed = set(labels)
    for index, (image, regions) in enumerate(zip(images, proposals)):
        for region in regions:
            if allowed and region.label not in allowed:
                raise ModelError(f"{spec.source}: image {index}: label {region.label!r} is not a project label")
            if region.score is None:
                raise ModelError(f"{spec.source}: image {index}: a {region.label!r} region has no score")
            x1, y1, x2, y2 = region.box.bounds()
            width, height = image.size
            if x1 < -1 or y1 < -1 or x2 > width + 1 or y2 > height + 1:
                raise ModelError(f"{spec.source}: image {index}: box {region.box} lies outside {width}x{height}")
    return proposals
