"""Per-image scores from per-region scores (raw for now; calibration will replace them)."""

from __future__ import annotations

from typing import Iterable

from openautoglm.converters import Region


def image_score(regions: Iterable[Region]) -> float:
    """The least confident region stands for the image, so uncertain images sort first.
    An image with no regions scores 1.0 until calibration can say how often that is a miss."""
    return min((r.score for r in regions if r.score is not None), default=1.0)
