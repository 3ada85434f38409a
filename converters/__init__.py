"""Format converters around one canonical annotation type. Imports neither model nor backends."""

from .formats import FORMATS, convert, load, save
from .types import AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape

__all__ = [
    "FORMATS", "convert", "load", "save",
    "AnnotatedImage", "AnnotationError", "Box", "Category", "Dataset", "ImageRecord", "Mask", "Region", "Shape",
]
