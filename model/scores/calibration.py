"""Calibrated confidence: a region's probability of being right, a task's probability of needing
no edit, and the versioned, content-addressed files they are kept in.

Applying a calibration needs numpy only (the region map is an isotonic step function, the task
model a logistic regression); fitting them uses scikit-learn (`fitting.py`).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from openautoglm.converters.files import atomic_file
from openautoglm.model.errors import ModelError

FORMAT = "openautoglm-calibration"
FORMAT_VERSION = 1
EVIDENCE_FLOOR = 0.05  # candidates kept below the display threshold, as evidence of likely misses
CURRENT = "current"  # what a pipeline scores with when no calibration is given: the one it was loaded with
TASK_FEATURES = ("log_all_correct", "min_probability", "shown", "near_misses", "near_miss_max", "near_miss_sum",
                 "empty")



def model_version_of(weights: str, calibration: "Calibration | None") -> str:
    """The version users see: the weights and the calibration's digest (`raw` without one)."""
    return f"{weights}+calibration-{calibration.digest if calibration is not None else 'raw'}"

class CalibrationError(ModelError):
    """A calibration file that cannot be used; the message names the file and the reason."""


def task_features(probabilities: Sequence[float], near_miss_scores: Sequence[float]) -> np.ndarray:
    """What the task model sees of one image: its shown regions' calibrated probabilities and the
    raw scores of the candidates below the display threshold that no shown box covers."""
    p = np.clip(np.asarray(probabilities, dtype=float), 1e-4, 1.0)
    near = np.asarray(near_miss_scores, dtype=float)
    return np.array([np.log(p).sum(), p.min(initial=1.0), len(p), len(near), near.max(initial=0.0), near.sum(),
                     float(len(p) == 0)])


def with_label_offsets(probabilities: np.ndarray, labels: Sequence[str | None] | None,
                       offsets: dict[str, float]) -> np.ndarray:
    """`probabilities` with each region's label's log-odds offset added (none: as they are)."""
    if not offsets or labels is None:
        return probabilities
    moved = np.array([offsets.get(label, 0.0) for label in labels], dtype=float)
    if not moved.any():
        return probabilities
    return np.where(moved != 0, _sigmoid(_logit(probabilities) + moved), probabilities)


def _logit(p) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def _sigmoid(z) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def cascade_region_features(probabilities: Sequence[float], agreement: Sequence[float]) -> np.ndarray:
    """Per region: the first stage's calibrated log-odds, and the score of the second stage's box
    of the same label on it (IoU >= 0.5; 0 when it found none)."""
    return np.column_stack([_logit(probabilities), np.asarray(agreement, dtype=float)]).reshape(-1, 2)


def cascade_task_features(task: float, agreement: Sequence[float], second_misses: Sequence[float]) -> np.ndarray:
    """Per task: the first stage's log-odds of no edit, the weakest agreement among its regions (1
    with none), and the best score the second stage gave an object no region covers (0 with none)."""
    return np.array([float(_logit(task)), min(agreement, default=1.0), max(second_misses, default=0.0)])


@dataclass(frozen=True)
class CascadeMaps:
    """Two small logistic models, fitted on the images a cascade's second stage looked at: they
    move the first stage's calibrated probabilities by what the second stage saw."""
    region_coef: tuple[float, float]
    region_intercept: float
    task_coef: tuple[float, float, float]
    task_intercept: float

    def apply(self, probabilities: Sequence[float], task: float, agreement: Sequence[float],
              second_misses: Sequence[float]) -> tuple[list[float], float]:
        if len(agreement) != len(probabilities):
            raise ValueError(f"{len(agreement)} agreement values for {len(probabilities)} regions")
        regions = _sigmoid(cascade_region_features(probabilities, agreement) @ np.array(self.region_coef)
                           + self.region_intercept).tolist() if len(probabilities) else []
        z = cascade_task_features(task, agreement, second_misses) @ np.array(self.task_coef) + self.task_intercept
        return regions, float(_sigmoid(z))

    @classmethod
    def from_dict(cls, doc: dict) -> "CascadeMaps":
        region, task = tuple(float(v) for v in doc["region_coef"]), tuple(float(v) for v in doc["task_coef"])
        if len(region) != 2 or len(task) != 3:
            raise ValueError("a cascade needs 2 region and 3 task coefficients")
        return cls(region, float(doc["region_intercept"]), task, float(doc["task_intercept"]))


@dataclass(frozen=True)
class Calibration:
    pipeline_version: str  # the pipeline and weights it was fitted for, e.g. yolo+yolov8n@c8c5ea2b540c
    display_threshold: float
    region_x: tuple[float, ...]  # isotonic map: raw score breakpoints -> probability the region is right
    region_y: tuple[float, ...]
    task_mean: tuple[float, ...]  # logistic task model on standardised TASK_FEATURES
    task_scale: tuple[float, ...]
    task_coef: tuple[float, ...]
    task_intercept: float
    provenance: dict = field(default_factory=dict)
    cascade: "CascadeMaps | None" = None  # how a second stage's agreement moves these scores, when fitted
    label_offsets: dict = field(default_factory=dict)  # label -> log-odds added to the region map (label_offsets.py)

    def __post_init__(self):
        if len(self.region_x) != len(self.region_y) or not self.region_x:
            raise ValueError("the region map needs as many breakpoints as values, at least one")
        if np.any(np.diff(self.region_x) < 0) or np.any(np.diff(self.region_y) < 0):
            raise ValueError("the region map must be non-decreasing")
        sizes = {len(self.task_mean), len(self.task_scale), len(self.task_coef)}
        if sizes != {len(TASK_FEATURES)}:
            raise ValueError(f"the task model needs {len(TASK_FEATURES)} features, got {sorted(sizes)}")

    @property
    def digest(self) -> str:
        """Content address: the same maps give the same digest, whatever the provenance says."""
        content = {k: v for k, v in self.to_dict().items() if k != "provenance"}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12]

    def region_probability(self, scores, labels: Sequence[str | None] | None = None) -> np.ndarray:
        """Each region's probability of being right: the map at its raw score, moved by its label's
        offset where `labels` are given and the calibration has one for it."""
        pooled = np.interp(np.asarray(scores, dtype=float), self.region_x, self.region_y)
        return with_label_offsets(pooled, labels, self.label_offsets)

    def task_probability(self, probabilities: Sequence[float], near_miss_scores: Sequence[float]) -> float:
        z = (task_features(probabilities, near_miss_scores) - self.task_mean) / self.task_scale
        logit = float(np.dot(z, self.task_coef) + self.task_intercept)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, logit))))

    def to_dict(self) -> dict:
        values = asdict(self)
        if self.cascade is None:  # files without a cascade keep the digest they always had
            values.pop("cascade")
        if not self.label_offsets:  # nor do files without per-label offsets
            values.pop("label_offsets")
        return {"format": FORMAT, "version": FORMAT_VERSION, "task_features": list(TASK_FEATURES),
                **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}

    def save(self, path: Path) -> None:
        """Written whole or not at all: a reader never sees half a file."""
        with atomic_file(Path(path), durable=True) as handle:
            handle.write(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> "Calibration":
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CalibrationError(f"calibration file {path} does not exist") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CalibrationError(f"calibration file {path} is not readable JSON: {error}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CalibrationError(f"calibration file {path} is not an openautoglm calibration (no 'format': {FORMAT})")
        if doc.get("version") != FORMAT_VERSION:
            raise CalibrationError(f"calibration file {path}: unsupported version {doc.get('version')!r}")
        if tuple(doc.get("task_features") or ()) != TASK_FEATURES:
            raise CalibrationError(f"calibration file {path}: task features {doc.get('task_features')} are not "
                                   f"this version's {list(TASK_FEATURES)}")
        try:
            return cls(str(doc["pipeline_version"]), float(doc["display_threshold"]),
                       *(tuple(float(v) for v in doc[key]) for key in
                         ("region_x", "region_y", "task_mean", "task_scale", "task_coef")),
                       float(doc["task_intercept"]), dict(doc.get("provenance") or {}),
                       CascadeMaps.from_dict(doc["cascade"]) if doc.get("cascade") is not None else None,
                       {str(label): float(offset) for label, offset in (doc.get("label_offsets") or {}).items()})
        except (KeyError, TypeError, ValueError) as error:
            raise CalibrationError(f"calibration file {path} is incomplete or malformed: {error!r}") from None
