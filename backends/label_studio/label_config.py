"""A labeling config -> what to predict: each Image tag's region controls and their labels."""

from __future__ import annotations

import functools
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass

log = logging.getLogger(__name__)
SUPPORTED = ("rectanglelabels", "polygonlabels", "brushlabels", "keypointlabels")


class LabelConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    control: str  # from_name
    kind: str  # one of SUPPORTED
    image: str  # to_name
    data_key: str  # the task data field holding the image URL ($image -> "image")
    labels: dict[str, list[str]]  # label as written in results -> other names a model may use for it


@functools.lru_cache(maxsize=16)  # a project sends the same config with every /predict
def parse(label_config: str) -> tuple[Target, ...]:
    try:
        root = ET.fromstring(label_config)
    except ET.ParseError as error:
        raise LabelConfigError(f"label config is not valid XML: {error}") from None
    images = {el.get("name"): (el.get("value") or "").lstrip("$") for el in root.iter() if el.tag.lower() == "image"}
    targets = []
    for element in root.iter():
        kind = element.tag.lower()
        if not kind.endswith("labels") and kind not in ("choices", "textarea", "rating"):
            continue
        name, to_name = element.get("name"), (element.get("toName") or "").split(",")[0]
        if kind not in SUPPORTED or to_name not in images:
            log.info("skipping control %r (%s): openautoglm does not predict it", name, element.tag)
            continue
        labels: dict[str, list[str]] = {}
        for label in element.iter("Label"):
            written = label.get("alias") or label.get("value")
            if written:
                others = [label.get("value")] + (label.get("predicted_values") or "").split(",")
                labels[written] = [o.strip() for o in others if o and o.strip() and o.strip() != written]
        targets.append(Target(name, kind, to_name, images[to_name], labels))
    return tuple(targets)
