"""Helpers that read one field and raise an AnnotationError naming it when it is missing or bad."""

from __future__ import annotations

import math
from typing import Any, Mapping

from .types import AnnotationError

_MISSING = object()


def require(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...] = object, default: Any = _MISSING) -> Any:
    if not isinstance(obj, dict):  # dict, not typing.Mapping: this runs for every field of every object
        raise AnnotationError(f"expected an object with {key!r}, got {type(obj).__name__}")
    value = obj.get(key, _MISSING)
    if value is _MISSING or value is None:
        if default is not _MISSING:
            return default
        raise AnnotationError(f"missing field {key!r}")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise AnnotationError(f"field {key!r} has the wrong type: {type(value).__name__}")
    return value


def number(obj: Mapping[str, Any], key: str, default: Any = _MISSING) -> float:
    value = require(obj, key, (int, float), default)
    if value is not None and not math.isfinite(value):
        raise AnnotationError(f"field {key!r} is not a finite number: {value!r}")
    return value


def parse_float(text: str | None, name: str) -> float:
    """A number from XML text or a text line, with the element named on failure."""
    if text is None or not text.strip():
        raise AnnotationError(f"missing {name}")
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f"{name} is not a number: {text.strip()!r}") from None
    if not math.isfinite(value):
        raise AnnotationError(f"{name} is not a finite number: {text.strip()!r}")
    return value


def parse_int(text: str | None, name: str) -> int:
    value = parse_float(text, name)
    if not value.is_integer():
        raise AnnotationError(f"{name} must be an integer, got {text!r}")
    return int(value)
