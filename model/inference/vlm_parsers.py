"""Grounding output parsers, one per VLM family: generated text -> labelled pixel boxes.

Each family writes boxes its own way (from the model cards):
- GLM-4.xV: `<|begin_of_box|>[x1,y1,x2,y2]<|end_of_box|>`, 0-1000 normalised, bracket styles
  vary, thinking variants emit `<think>...</think>` first.
- Qwen3-VL: JSON objects `{"bbox_2d": [x1,y1,x2,y2], "label": ...}`, 0-1000 normalised.
- Qwen2.5-VL: the same JSON in absolute pixels of the *resized* model input.
- Florence-2: `label<loc_x1><loc_y1><loc_x2><loc_y2>`, 1000 bins per axis.
- PaliGemma: `<locY1><locX1><locY2><locX2> label ; ...`, y before x, 1024 bins.
- Moondream: JSON objects with x_min, y_min, x_max, y_max as 0-1 floats.
Anything malformed (truncated JSON, coordinates out of range, inverted boxes, unknown labels,
duplicates) is skipped with one warning; a parser never raises on model output.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Callable, Iterable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ParsedBox:
    label: str
    x1: float
    y1: float
    x2: float
    y2: float
    span: tuple[int, int]  # character span of this box in the generated text (for token scores)


_THINK = re.compile(r"<think>.*?(</think>|$)", re.S)
_NUMBER = r"-?\d+(?:\.\d+)?"


def _strip_thinking(text: str) -> tuple[str, int]:
    """Text after any think block, and the offset where it starts in the original text."""
    last = None
    for last in _THINK.finditer(text):  # noqa: B007 - the last match is what is wanted
        pass
    if last is None:
        return text, 0
    return text[last.end():], last.end()


def _match_label(raw: str, labels: Iterable[str]) -> str | None:
    wanted = raw.strip().strip("\"'*:-,. ").lower()
    for label in labels:
        if label.lower() == wanted:
            return label
    # prose ("The dog is at"): the label named last before the box, plurals included
    best, best_at = None, -1
    for label in labels:
        for match in re.finditer(r"\b" + re.escape(label.lower()) + r"(e?s)?\b", wanted):
            if match.start() > best_at:
                best, best_at = label, match.start()
    return best


def _accept(found: list[ParsedBox], label_text: str, labels, coords, scale, limit, span, where: str) -> None:
    label = _match_label(label_text, labels) if labels else label_text.strip()
    if not label:
        log.warning("%s: skipped a box with unknown label %r", where, label_text)
        return
    x1, y1, x2, y2 = coords
    if min(coords) < 0 or max(x1, x2) > limit[0] or max(y1, y2) > limit[1]:
        log.warning("%s: skipped %r box %s outside 0..%s", where, label, coords, limit)
        return
    if x2 <= x1 or y2 <= y1:
        log.warning("%s: skipped inverted %r box %s", where, label, coords)
        return
    box = ParsedBox(label, x1 * scale[0], y1 * scale[1], x2 * scale[0], y2 * scale[1], span)
    if any((b.label, b.x1, b.y1, b.x2, b.y2) == (box.label, box.x1, box.y1, box.x2, box.y2) for b in found):
        log.warning("%s: skipped a duplicate %r box", where, label)
        return
    found.append(box)


_GLM_BOX = re.compile(
    r"(?P<label>[^<>\n]*?)\s*<\|begin_of_box\|>\s*[\[\(]*\s*(?P<coords>" + _NUMBER + r"(?:\s*,\s*" + _NUMBER
    + r"){3})\s*[\]\)]*\s*<\|end_of_box\|>"
)


def parse_glm(text: str, labels: list[str], width: int, height: int) -> list[ParsedBox]:
    body, offset = _strip_thinking(text)
    found: list[ParsedBox] = []
    for match in _GLM_BOX.finditer(body):
        coords = [float(v) for v in match["coords"].split(",")]
        label_text = re.sub(r"^[\s,;.]*(and\s+)?", "", match["label"])
        if not label_text and len(labels) == 1:
            label_text = labels[0]  # "locate the <label>" prompts answer with a bare box
        span = (match.start() + offset, match.end() + offset)
        _accept(found, label_text, labels, coords, (width / 1000, height / 1000), (1000, 1000), span, "glm")
    return found


def _json_objects(text: str) -> Iterable[tuple[dict, tuple[int, int]]]:
    """Every complete JSON object in the text (in ```json fences or not); a truncated tail is ignored."""
    decoder = json.JSONDecoder()
    index = 0
    while True:
        start = text.find("{", index)
        if start < 0:
            return
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        yield from ((found, (start, end)) for found in _dicts_in(obj))
        index = end


def _dicts_in(value) -> Iterable[dict]:
    """Dicts at any depth ({"objects": [{...}]} and [{...}] both hold boxes)."""
    if isinstance(value, dict):
        yield value
        for inner in value.values():
            yield from _dicts_in(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _dicts_in(inner)


def _parse_qwen_json(text: str, labels, scale, limit, where: str) -> list[ParsedBox]:
    body, offset = _strip_thinking(text)
    found: list[ParsedBox] = []
    for obj, (start, end) in _json_objects(body):
        coords = obj.get("bbox_2d") or obj.get("bbox")
        if not (isinstance(coords, list) and len(coords) == 4 and all(isinstance(c, (int, float)) for c in coords)):
            log.warning("%s: skipped an object without a 4-number bbox_2d: %s", where, obj)
            continue
        label_text = str(obj.get("label", labels[0] if len(labels) == 1 else ""))
        _accept(found, label_text, labels, [float(c) for c in coords], scale, limit, (start + offset, end + offset),
                where)
    return found


def parse_qwen3(text: str, labels: list[str], width: int, height: int) -> list[ParsedBox]:
    return _parse_qwen_json(text, labels, (width / 1000, height / 1000), (1000, 1000), "qwen3-vl")


def parse_qwen25(text: str, labels: list[str], width: int, height: int,
                 input_width: int, input_height: int) -> list[ParsedBox]:
    """Qwen2.5-VL answers in pixels of the resized input (input_width x input_height)."""
    scale = (width / input_width, height / input_height)
    return _parse_qwen_json(text, labels, scale, (input_width, input_height), "qwen2.5-vl")


_FLORENCE = re.compile(r"(?P<label>[^<]*?)((?:<loc_\d+>){4})")


def parse_florence2(text: str, labels: list[str], width: int, height: int) -> list[ParsedBox]:
    found: list[ParsedBox] = []
    for match in _FLORENCE.finditer(text.replace("</s>", "").replace("<s>", "")):
        bins = [int(v) for v in re.findall(r"<loc_(\d+)>", match.group(2))]
        # bin k covers [k, k+1) / 1000 of the side; its centre is the coordinate
        coords = [b + 0.5 for b in bins]
        _accept(found, match["label"], labels, coords, (width / 1000, height / 1000), (1000, 1000), match.span(),
                "florence-2")
    return found


_PALIGEMMA = re.compile(r"((?:<loc\d{4}>){4})\s*(?P<label>[^;<]*)")


def parse_paligemma(text: str, labels: list[str], width: int, height: int) -> list[ParsedBox]:
    found: list[ParsedBox] = []
    for match in _PALIGEMMA.finditer(text):
        y1, x1, y2, x2 = (int(v) for v in re.findall(r"<loc(\d{4})>", match.group(1)))
        _accept(found, match["label"], labels, [x1, y1, x2, y2], (width / 1024, height / 1024), (1024, 1024),
                match.span(), "paligemma")
    return found


def parse_moondream(text: str, labels: list[str], width: int, height: int) -> list[ParsedBox]:
    found: list[ParsedBox] = []
    for obj, span in _json_objects(text):
        try:
            coords = [float(obj[k]) for k in ("x_min", "y_min", "x_max", "y_max")]
        except (KeyError, TypeError, ValueError):
            log.warning("moondream: skipped an object without x_min/y_min/x_max/y_max: %s", obj)
            continue
        label_text = str(obj.get("label", labels[0] if len(labels) == 1 else ""))
        _accept(found, label_text, labels, coords, (width, height), (1, 1), span, "moondream")
    return found


PARSERS: dict[str, Callable[..., list[ParsedBox]]] = {
    "glm4v": parse_glm, "qwen3_vl": parse_qwen3, "qwen2_5_vl": parse_qwen25,
    "florence2": parse_florence2, "paligemma": parse_paligemma, "moondream": parse_moondream,
}
