"""openautoglm: pre-annotation backend for Label Studio and CVAT, and lossless format converters.

Public Python API:
    from openautoglm import load, save, convert, Dataset, Region, Box, Mask
"""

__version__ = "0.1.0"

from openautoglm.converters import (  # noqa: E402  (the version is read by submodules)
    AnnotatedImage, AnnotationError, Box, Category, Dataset, ImageRecord, Mask, Region, Shape, convert, load, save,
)



_LAZY = ("AutoLabeler", "save_to_coco", "save_to_yolo", "save_to_voc", "save_to_label_studio", "save_to_cvat",
         "save_to_labelme")


def __getattr__(name: str):
    # AutoLabeler pulls in the model stack; import it only when asked for.
    if name in _LAZY:
        from openautoglm import autolabel

        return getattr(autolabel, name)
    raise AttributeError(name)


__all__ = [
    "__version__", "convert", "load", "save", *_LAZY,
    "AnnotatedImage", "AnnotationError", "Box", "Category", "Dataset", "ImageRecord", "Mask", "Region", "Shape",
]
