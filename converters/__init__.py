"""Format converters around one canonical annotation type. Imports neither model nor backends.

The canonical types are imported here; the format registry and its readers and writers (every
format module) only when first used, so reading a Region does not load six formats."""

from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape

_FROM_FORMATS = ("FORMATS", "convert", "load", "save")


def __getattr__(name: str):
    if name in _FROM_FORMATS:
        from . import formats

        return getattr(formats, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    *_FROM_FORMATS,
    "AnnotatedImage", "AnnotationError", "Box", "Category", "Dataset", "ImageRecord", "Mask", "Region", "Shape",
]
