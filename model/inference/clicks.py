"""What a click points at: the object at a clicked point (or inside a drawn rectangle), chosen among
the detector's shown regions, the candidates it kept below its display threshold and, for a click
with a label, the raw boxes under the click scored for that label, so a click on an object the
detector did not show still finds it, and a click on background finds nothing.

The rule (measured in benchmarks/clicks.py on coco-val100): among candidates of the click's label
whose box holds the click, the best by score ** SCORE_POWER * exp(-CENTRE_WEIGHT * d), d the click's
squared offset from the box centre in box widths and heights. A candidate below the display
threshold (`near_miss`) counts only with the click in the middle of its box (d <= MAX_OFFSET):
that is what keeps most background clicks empty."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator, Sequence

from openautoglm.converters import Box, Region
from openautoglm.converters.geometry import box_iou

CLICK_FLOOR = 0.001  # candidates this weak still count when a person points at them
LABEL_FLOOR = 0.005  # the anchors scored for the click's label (0.001: 2 points more found, 2 more of background)
SCORE_POWER, CENTRE_WEIGHT, MAX_OFFSET = 0.5, 8.0, 0.125
MIN_DRAWN_IOU = 0.5  # a candidate a drawn rectangle points at overlaps it at least this much


@dataclass(frozen=True)
class Click:
    """A positive point (x, y in image pixels), or a drawn box, with the label chosen for it (None:
    any label)."""

    x: float
    y: float
    label: str | None = None
    drawn: Box | None = None


def centre_offset(box: Box, x: float, y: float) -> float:
    x1, y1, x2, y2 = box.bounds()
    width, height = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    return ((x - (x1 + x2) / 2) / width) ** 2 + ((y - (y1 + y2) / 2) / height) ** 2


def object_at(candidates: Sequence[Region], click: Click) -> Region | None:
    """The candidate the click points at, or None (background, or nothing of its label there)."""
    best, best_key = None, -1.0
    for region in candidates:
        if region.box is None or (click.label is not None and region.label != click.label):
            continue
        if click.drawn is not None:
            overlap = box_iou(region.box, click.drawn)
            if overlap < MIN_DRAWN_IOU:
                continue
            key = (region.score or 0.0) ** SCORE_POWER * overlap
        else:
            x1, y1, x2, y2 = region.box.bounds()
            offset = centre_offset(region.box, click.x, click.y)
            if not (x1 <= click.x <= x2 and y1 <= click.y <= y2):
                continue
            if region.attributes.get("near_miss") and offset > MAX_OFFSET:
                continue
            key = (region.score or 0.0) ** SCORE_POWER * math.exp(-CENTRE_WEIGHT * offset)
        if key > best_key:
            best, best_key = region, key
    return best


@contextlib.contextmanager
def one_forward_per_image(proposers: Sequence) -> Iterator[None]:
    """Proposers that can reuse their last output for the same image do so for the calls inside: a
    labelled click looks at the image twice (its detections, then the anchors of its label)."""
    with contextlib.ExitStack() as stack:
        for proposer in proposers:
            if hasattr(proposer, "one_forward_per_image"):
                stack.enter_context(proposer.one_forward_per_image())
        yield


@contextlib.contextmanager
def candidates_down_to(proposers: Sequence, floor: float) -> Iterator[None]:
    """Proposers that keep candidates below their display threshold keep them down to `floor` for
    the calls inside; the caller holds the model lock (the floor is the proposer's own state)."""
    kept = [(p, p.evidence_floor) for p in proposers if hasattr(p, "evidence_floor")]
    for proposer, _ in kept:
        proposer.evidence_floor = floor
    try:
        yield
    finally:
        for proposer, floor_before in kept:
            proposer.evidence_floor = floor_before
