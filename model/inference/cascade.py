"""A pipeline's second stage: another proposer (a detector, an open-vocabulary model or a VLM) that
looks only at the images the first stage is unsure of, those whose task score is below the
cascade's `below`. What it sees is evidence for calibration, not a replacement of the boxes: each
shown region gets the score of the second stage's box of its label on it (its agreement), and the
task gets the scores of the objects the second stage found that no shown region covers (likely
misses). A calibration's cascade maps turn that evidence into the scores users see.

In the pipeline YAML:

    cascade:
      model: yolox-nano   # any proposer entry, with its options
      conf: 0.25
      below: 0.8         # task scores below this go to the second stage
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Sequence

from PIL import Image

from openautoglm.converters import Region
from openautoglm.converters.geometry import box_iou
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.interface import check_proposals
from openautoglm.model.scores.scoring import DUPLICATE_IOU, ImagePrediction, scored_prediction, uncovered


@dataclass(frozen=True)
class CascadeSpec:
    proposer: dict  # a proposer entry, as under `proposers:`
    below: float

    @classmethod
    def from_dict(cls, doc, where: str) -> "CascadeSpec":
        if not isinstance(doc, dict) or not doc.get("model"):
            raise ModelError(f"{where}: 'cascade' must be a mapping with a model and a 'below' task score")
        below = doc.get("below")
        if not isinstance(below, (int, float)) or isinstance(below, bool) or not 0.0 < below <= 1.0:
            raise ModelError(f"{where}: cascade 'below' must be a task score in (0, 1], got {below!r}")
        return cls({k: v for k, v in doc.items() if k != "below"}, float(below))


def evidence(shown: Sequence[Region], found: Sequence[Region]) -> tuple[list[float], list[Region]]:
    """(per shown region, the best score among the second stage's boxes of its label with IoU >= 0.5,
    0 when there is none; the second stage's boxes that no shown region of their label covers that much)."""
    agreement = [max((f.score for f in found if f.label == r.label and box_iou(f.box, r.box) >= DUPLICATE_IOU),
                     default=0.0) for r in shown]
    return agreement, uncovered(found, shown)


class SecondStage:
    def __init__(self, spec: CascadeSpec, proposer):
        self.spec = spec
        self.proposer = proposer

    @property
    def below(self) -> float:
        return self.spec.below

    def refine(self, images: Sequence[Image.Image], labels: Sequence[str], synonyms,
               predictions: list[ImagePrediction], calibration, every_image: bool = False) -> list[ImagePrediction]:
        """Run the second stage on the images scored below `below` (all of them with `every_image`,
        as fitting needs) and score those again with its evidence; the others are returned as they were."""
        unsure = [i for i, p in enumerate(predictions) if every_image or p.score < self.below]
        if not unsure:
            return predictions
        started = time.perf_counter()
        picked = [images[i] for i in unsure]
        found = check_proposals(self.proposer.spec, picked, labels, self.proposer.propose(picked, labels, synonyms))
        seconds = (time.perf_counter() - started) / len(unsure)
        refined = list(predictions)
        for index, regions in zip(unsure, found):
            first = predictions[index]
            agreement, misses = evidence(first.regions, [r for r in regions if not r.attributes.get("near_miss")])
            looked = dataclasses.replace(
                first.evidence, second_misses=tuple(r.score for r in misses),
                regions=tuple(dataclasses.replace(e, agreement=a) for e, a in zip(first.evidence.regions, agreement)))
            again = scored_prediction(first.regions, looked, calibration, first.near_misses, misses)
            refined[index] = dataclasses.replace(again, second_stage_seconds=seconds)
        return refined
