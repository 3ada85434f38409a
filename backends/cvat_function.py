"""openautoglm as a cvat-sdk auto-annotation function, for `cvat-cli task auto-annotate` against
any CVAT and for CVAT agents:

    cvat-cli task auto-annotate TASK_ID --function-module openautoglm.backends.cvat_function \\
        -p model=str:yolo -p threshold=float:0.3 [-p labels=str:person,car] [--allow-unmatched-labels]

Shapes carry `score` (CVAT stores it and can filter on it). The context's `conf_threshold`
overrides `threshold`; with `conv_mask_to_poly` masks come back as polygons.
"""

from __future__ import annotations

import cvat_sdk.auto_annotation as cvataa
import cvat_sdk.models as models
import PIL.Image
from cvat_sdk.masks import encode_mask

from openautoglm.converters.geometry import mask_outline
from openautoglm.model.inference.pipeline import Pipeline


class OpenautoglmFunction:
    def __init__(self, model: str = "yolo", labels: str = "", threshold: float = 0.25, device: str | None = None):
        self.pipeline = Pipeline.load(model, device)  # once per process; detect is called per frame
        self.labels = [n.strip() for n in labels.split(",") if n.strip()] or list(self.pipeline.vocabulary or ())
        if not self.labels:
            raise cvataa.BadFunctionError(f"pipeline {model!r} is open-vocabulary: pass -p labels=str:a,b,c")
        self.threshold = threshold
        shape_type = "mask" if self.pipeline.segmenter is not None else "rectangle"
        self.spec = cvataa.DetectionFunctionSpec(
            labels=[cvataa.label_spec(name, index, type=shape_type) for index, name in enumerate(self.labels)])

    def detect(self, context: cvataa.DetectionFunctionContext,
               image: PIL.Image.Image) -> list[models.LabeledShapeRequest]:
        threshold = context.conf_threshold if context.conf_threshold is not None else self.threshold
        (regions,) = self.pipeline.propose([image.convert("RGB")], self.labels)
        label_ids = {name: index for index, name in enumerate(self.labels)}
        shapes = []
        for region in regions:
            if region.confidence < threshold:
                continue
            label_id, score = label_ids[region.label], float(region.confidence)
            if region.mask is None or not region.mask.area():
                shapes.append(cvataa.rectangle(label_id, list(region.box.bounds()), score=score))
            elif context.conv_mask_to_poly:
                ring = mask_outline(region.mask)
                if ring is not None:
                    shapes.append(cvataa.polygon(label_id, [float(c) for c in ring.ravel()], score=score))
            else:
                shapes.append(cvataa.mask(label_id, encode_mask(region.mask.to_array()), score=score))
        return shapes


create = OpenautoglmFunction
