"""openautoglm: pre-annotation backend for Label Studio and CVAT, and lossless format converters.

Public Python API:
    from openautoglm import load, save, convert, Dataset, Region, Box, Mask
    from openautoglm import AutoLabeler, save_to_coco

Everything is imported when first asked for: `import openautoglm` loads nothing heavy.
"""

__version__ = "0.1.0"

_CONVERTERS = ("convert", "load", "save", "AnnotatedImage", "AnnotationError", "Box", "Category", "Dataset",
               "ImageRecord", "Mask", "Region", "Shape")
_AUTOLABEL = ("AutoLabeler", "save_to_coco", "save_to_yolo", "save_to_voc", "save_to_label_studio", "save_to_cvat",
              "save_to_labelme")


def __getattr__(name: str):
    if name in _CONVERTERS:
        from openautoglm import converters

        return getattr(converters, name)
    if name in _AUTOLABEL:  # pulls in the model stack
        from openautoglm import autolabel

        return getattr(autolabel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__", *_CONVERTERS, *_AUTOLABEL]
