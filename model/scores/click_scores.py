"""How often the object a click finds is right, by the detector's raw score: a map fitted on
clicks (benchmarks/clicks.py --fit) and shipped per pipeline as `<pipeline>.clicks.json`, used
only with the weights it was fitted for."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from openautoglm.converters import Region
from openautoglm.model.errors import ModelError

CLICK_MAP_FORMAT = "openautoglm-click-scores"


@dataclass(frozen=True)
class ClickScores:
    """P(the object a click finds is the one clicked, IoU >= 0.5) by the detector's raw score: an
    isotonic map, for the weights it names. The detector's calibration cannot say this: it maps a
    score under the display threshold to almost 0, while a candidate a person pointed at is right
    most of the time."""

    pipeline_version: str
    x: tuple[float, ...]
    y: tuple[float, ...]

    def probability(self, score: float) -> float:
        return float(np.interp(score, self.x, self.y))

    def scored(self, region: Region) -> Region:
        return replace(region, calibrated_score=self.probability(region.score or 0.0))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"format": CLICK_MAP_FORMAT, "pipeline_version": self.pipeline_version,
                                    "x": list(self.x), "y": list(self.y)}, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "ClickScores":
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != CLICK_MAP_FORMAT:
                raise ValueError(f"format is {doc.get('format')!r}")
            return cls(str(doc["pipeline_version"]), tuple(map(float, doc["x"])), tuple(map(float, doc["y"])))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ModelError(f"click score map {path}: {error}") from None


def shipped_click_scores(pipeline_name: str, pipeline_version: str) -> ClickScores | None:
    """The map shipped for this pipeline, if one was fitted for these weights."""
    shipped = Path(str(resources.files("openautoglm.model.scores.calibrations").joinpath(
        f"{pipeline_name}.clicks.json")))
    if not shipped.is_file():
        return None
    scores = ClickScores.load(shipped)
    return scores if scores.pipeline_version == pipeline_version else None
