"""Pipelines: proposers (+ later a segmenter), thresholds and label synonyms, described in a
versioned YAML spec and selected by name (`--model yolo`) or by a path to a spec file."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import yaml
from PIL import Image

from openautoglm.converters import Region, Shape
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.cascade import CascadeSpec, SecondStage
from openautoglm.model.inference.clicks import (
    CLICK_FLOOR,
    LABEL_FLOOR,
    Click,
    candidates_down_to,
    object_at,
    one_forward_per_image,
)
from openautoglm.model.inference.interface import Proposer, Segmenter, check_proposals
from openautoglm.model.inference.registry import find_local, resolve
from openautoglm.model.inference.settings import ModelSettings
from openautoglm.model.scores.calibration import CURRENT, EVIDENCE_FLOOR, Calibration, model_version_of
from openautoglm.model.scores.calibration_files import find_calibration
from openautoglm.model.scores.click_scores import ClickScores, shipped_click_scores
from openautoglm.model.scores.scoring import (
    ImageEvidence,
    ImagePrediction,
    region_evidence,
    scored_prediction,
    uncovered,
)

log = logging.getLogger(__name__)

SPEC_VERSION = 1


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    proposers: tuple[dict, ...]
    segmenter: dict | None = None
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    cascade: CascadeSpec | None = None

    @classmethod
    def from_dict(cls, doc: Any, where: str) -> "PipelineSpec":
        if not isinstance(doc, dict):
            raise ModelError(f"{where}: a pipeline spec must be a mapping")
        if doc.get("version") != SPEC_VERSION:
            raise ModelError(f"{where}: unsupported spec version {doc.get('version')!r} (expected {SPEC_VERSION})")
        proposers = doc.get("proposers")
        if not isinstance(proposers, list) or not proposers or not all(isinstance(p, dict) and p.get("model")
                                                                       for p in proposers):
            raise ModelError(f"{where}: 'proposers' must be a non-empty list of {{model: ...}} entries")
        cascade = CascadeSpec.from_dict(doc["cascade"], where) if doc.get("cascade") is not None else None
        return cls(str(doc.get("name") or Path(where).stem), tuple(proposers), doc.get("segmenter"),
                   dict(doc.get("synonyms") or {}), cascade)


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("openautoglm.model.inference.pipelines").iterdir()
                  if p.name.endswith(".yaml"))


def load_spec(name_or_path: str) -> PipelineSpec:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text, where = path.read_text(encoding="utf-8"), str(path)
    elif name_or_path in builtin_names():
        text = resources.files("openautoglm.model.inference.pipelines").joinpath(f"{name_or_path}.yaml").read_text()
        where = f"pipeline {name_or_path}"
    else:
        raise ModelError(f"unknown pipeline {name_or_path!r}: use one of {', '.join(builtin_names())} or a .yaml file")
    try:
        return PipelineSpec.from_dict(yaml.safe_load(text), where)
    except yaml.YAMLError as error:
        raise ModelError(f"{where}: invalid YAML: {error}") from None


def create_proposer(entry: dict, synonyms: dict, device: str | None, settings: ModelSettings) -> Proposer:
    # `fallback`: the model to use when the first one's weights are not on this machine
    here = find_local(entry["model"], settings.model_dir)
    name = entry["model"] if here or not entry.get("fallback") else entry["fallback"]
    known, weights = resolve(name, settings)
    family = known.family if known else _family_of_path(weights)
    options = {k: v for k, v in entry.items() if k not in ("model", "fallback")}
    entry = {**entry, "model": name}
    if family == "ultralytics":
        from openautoglm.model.inference.litert_yolo import LiteRtYoloProposer, is_litert_detector
        from openautoglm.model.inference.ultralytics_yolo import UltralyticsProposer

        if is_litert_detector(weights):  # same boxes as ultralytics, without importing torch
            return LiteRtYoloProposer(entry["model"], weights, synonyms=synonyms, **options)

        return UltralyticsProposer(entry["model"], weights, device=device, synonyms=synonyms, **options)
    if family == "yolox":
        from openautoglm.model.inference.yolox import YoloxProposer

        return YoloxProposer(entry["model"], weights, synonyms=synonyms, **options)
    if family == "zero-shot":
        from openautoglm.model.inference.zero_shot import ZeroShotProposer

        return ZeroShotProposer(entry["model"], weights, device=device, synonyms=synonyms, **options)
    if family == "vlm":
        from openautoglm.model.inference.vlm import VlmProposer

        return VlmProposer(entry["model"], weights, device=device, synonyms=synonyms, **options)
    raise ModelError(f"model {entry['model']!r} ({family}) cannot be used as a proposer in this version")


def create_segmenter(entry: dict | None, device: str | None, settings: ModelSettings) -> Segmenter | None:
    """The configured segmenter; GrabCut only when the entry says so or its `fallback: grabcut`
    applies because no weights for the named model are on this machine and it is offline."""
    if not entry:
        return None
    from openautoglm.model.inference.segmenters import GrabCutSegmenter, SamSegmenter

    name = entry.get("model")
    missing = not find_local(name, settings.model_dir) and settings.offline
    if name == "grabcut" or (entry.get("fallback") == "grabcut" and missing):
        if name != "grabcut":
            log.warning("segmenter %s: no weights here and offline; using the weight-free GrabCut fallback", name)
        return GrabCutSegmenter()
    known, weights = resolve(name, settings)
    if (known and known.family == "ultralytics-sam") or weights.endswith(".pt"):
        from openautoglm.model.inference.segmenters import UltralyticsSamSegmenter

        return UltralyticsSamSegmenter(name, weights, device)
    return SamSegmenter(name, weights, device)


_ZERO_SHOT_TYPES = {"owlv2", "owlvit", "grounding-dino", "mm-grounding-dino"}
_VLM_TYPES = {"qwen2_5_vl", "qwen3_vl", "glm4v", "glm4v_moe"}


def _family_of_path(weights: str) -> str:
    path = Path(weights)
    config = path / "config.json"
    if config.is_file():
        model_type = json.loads(config.read_text()).get("model_type", "")
        if model_type in _ZERO_SHOT_TYPES:
            return "zero-shot"
        return "vlm" if model_type in _VLM_TYPES else "sam" if model_type.startswith("sam") else model_type
    if "yolox" in path.name.lower():
        return "yolox"
    return "ultralytics" if path.suffix in (".pt", ".onnx", ".tflite", ".engine") else "unknown"


class Pipeline:
    """Loaded once per process; `predict` runs every proposer on a batch, merges their regions,
    adds masks, and scores regions and images (calibrated where a calibration applies)."""

    def __init__(self, spec: PipelineSpec, device: str | None = None, calibration: Calibration | str | None = "auto",
                 settings: ModelSettings | None = None):
        """`calibration`: "auto" finds the one asked for in `settings`, in the model directory or
        shipped; None scores raw. `settings`: read from the environment when not given."""
        settings = settings or ModelSettings.from_env()
        device = device or settings.device
        self.spec = spec
        self.proposers = [create_proposer(entry, spec.synonyms, device, settings) for entry in spec.proposers]
        for proposer in self.proposers:
            if hasattr(proposer, "evidence_floor"):
                proposer.evidence_floor = EVIDENCE_FLOOR
        self.segmenter = create_segmenter(spec.segmenter, device, settings)
        self.second_stage = SecondStage(spec.cascade, create_proposer(spec.cascade.proposer, spec.synonyms, device,
                                                                      settings)) if spec.cascade else None
        found = find_calibration(spec.name, self.version, settings.calibration, settings.model_dir) \
            if calibration == "auto" else calibration
        self.calibration: Calibration | None = found  # as loaded; a Label Studio project may have its own
        self.click_scores: ClickScores | None = shipped_click_scores(spec.name, self.version)

    @classmethod
    def load(cls, name_or_path: str, device: str | None = None, calibration: Calibration | str | None = "auto",
             settings: ModelSettings | None = None) -> "Pipeline":
        return cls(load_spec(name_or_path), device, calibration, settings)

    @property
    def name(self) -> str:
        return self.spec.name


    @property
    def vocabulary(self) -> tuple[str, ...] | None:
        """The class names of a closed-set pipeline (every proposer's); None for open vocabulary."""
        names = [v for p in self.proposers for v in (p.spec.vocabulary or ())]
        return tuple(dict.fromkeys(names)) if names else None

    @property
    def cascade_below(self) -> float | None:
        """The task score under which a cascade's second stage looks again; None without one."""
        return self.second_stage.below if self.second_stage else None

    @property
    def version(self) -> str:
        """Stable across restarts: the pipeline name and each proposer's weights digest."""
        segmenter = [self.segmenter.name] if self.segmenter else []
        second = [self.second_stage.proposer.spec.source] if self.second_stage else []
        return "+".join([self.spec.name] + [p.spec.source for p in self.proposers] + segmenter + second)

    @property
    def display_threshold(self) -> float:
        """The lowest score a proposer shows: what a calibration maps from."""
        return min((getattr(p, "conf", 0.25) for p in self.proposers), default=0.25)

    @property
    def model_version(self) -> str:
        """The version users see: weights and the calibration's digest (`raw` without one)."""
        return model_version_of(self.version, self.calibration)

    def propose(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict[str, list[str]] | None = None) -> list[list[Region]]:
        return [prediction.regions for prediction in self.predict(images, labels, synonyms)]

    def predict(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict[str, list[str]] | None = None, second_stage_on_all: bool = False,
                calibration: Calibration | None | str = CURRENT) -> list[ImagePrediction]:
        """`second_stage_on_all`: a cascade's second stage looks at every image, not only the unsure
        ones (what fitting and evaluating a cascade need). `calibration`: the one to score with
        instead of the pipeline's own (a Label Studio project's refit; None: raw scores)."""
        shown: list[list[Region]] = [[] for _ in images]
        below: list[list[Region]] = [[] for _ in images]  # candidates under the display threshold
        for proposer in self.proposers:
            found = check_proposals(proposer.spec, images, labels, proposer.propose(images, labels, synonyms))
            for regions, near, new in zip(shown, below, found):
                for region in new:
                    (near if region.attributes.get("near_miss") else regions).append(region)
        masks: list[list[float | None] | None] = [None] * len(images)
        if self.segmenter is not None:
            masked = [self._with_masks(image, regions) for image, regions in zip(images, shown)]
            shown, masks = [regions for regions, _ in masked], [scores for _, scores in masked]
        if calibration == CURRENT:
            calibration = self.calibration
        predictions = []
        for image, regions, near, mask_scores in zip(images, shown, below, masks):
            near = uncovered(near, regions)
            found = ImageEvidence(region_evidence(regions, *image.size, mask_scores), tuple(r.score for r in near))
            predictions.append(scored_prediction(regions, found, calibration, near))
        if self.second_stage is None:
            return predictions
        return self.second_stage.refine(images, labels, synonyms, predictions, calibration, second_stage_on_all)

    def _with_masks(self, image: Image.Image, regions: list[Region]) -> tuple[list[Region], list[float]]:
        """The regions with the segmenter's masks, and each mask's score."""
        masks = self.segmenter.segment(image, [r.box for r in regions])
        return ([dataclasses.replace(region, shape=Shape.MASK, box=mask.bounding_box() if mask.area() else region.box,
                                     mask=mask) for region, (mask, _) in zip(regions, masks)],
                [float(mask_score) for _, mask_score in masks])

    def objects_at(self, image: Image.Image, clicks: Sequence[Click], labels: Sequence[str],
                   synonyms: dict[str, list[str]] | None = None) -> list[Region]:
        """The object each click points at (`clicks.object_at`; nothing for a click on background),
        with the segmenter's mask where there is one, scored by how often such a find is right (the
        pipeline's click map; without one, as a detection). A drawn box that points at nothing is
        segmented as drawn when there is a segmenter. Call under the model lock."""
        with one_forward_per_image(self.proposers):
            with candidates_down_to(self.proposers, CLICK_FLOOR):
                (prediction,) = self.predict([image], labels, synonyms, calibration=None)
            candidates = prediction.regions + prediction.near_misses
            found = []
            for click in clicks:
                labelled = self._label_candidates(image, click, synonyms, prediction.regions)
                region = object_at(candidates + labelled, click)
                if region is not None:
                    found.append(self.click_scores.scored(region) if self.click_scores else self._as_detection(region))
                elif click.drawn is not None and self.segmenter is not None:
                    found.append(Region(click.label or "object", box=click.drawn, source=self.version))
        if self.segmenter is None or not found:
            return found
        masked, mask_scores = self._with_masks(image, found)
        # a drawn box that pointed at nothing has no detector score: its mask's is all there is
        return [dataclasses.replace(region, score=mask_score) if region.score is None else region
                for region, mask_score in zip(masked, mask_scores)]

    def _label_candidates(self, image: Image.Image, click: Click, synonyms: dict | None,
                          shown: list[Region]) -> list[Region]:
        """For a click with a label, the anchors under it scored for that label, from the proposers
        that can (an object whose anchors rank another class first is then found too)."""
        if click.label is None or click.drawn is not None:
            return []
        found = [region for proposer in self.proposers if hasattr(proposer, "label_candidates")
                 for region in proposer.label_candidates(image, click.label, synonyms, (click.x, click.y), LABEL_FLOOR)]
        return uncovered(found, shown)  # a shown detection stands for the anchors it was kept from

    def _as_detection(self, region: Region) -> Region:
        if self.calibration is None:
            return region
        probability = float(self.calibration.region_probability([region.score], [region.label])[0])
        return dataclasses.replace(region, calibrated_score=probability)
