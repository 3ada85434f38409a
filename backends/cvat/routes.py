"""The three Nuclio dashboard calls CVAT makes (CVAT_NUCLIO_INVOKE_METHOD=dashboard):
GET /api/functions, GET /api/functions/{id}, POST /api/function_invocations with the function id
in the `x-nuclio-function-name` header. Answering them replaces Nuclio and Docker."""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, jsonify, request
from PIL import Image

from openautoglm.converters import AnnotationError, Box, Region
from openautoglm.converters.files import DEFAULT_MAX_PIXELS, TooManyPixels, decode_image
from openautoglm.model.inference.clicks import Click

from ..batching import ModelCalls
from .functions import SEGMENTER_ID, FunctionCatalog, detector_shapes, function_id, interactor_answer


class InvocationError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def blueprint(catalog: FunctionCatalog, calls: ModelCalls, max_pixels: int = DEFAULT_MAX_PIXELS) -> Blueprint:
    """`calls`: the worker's model calls, shared with Label Studio's /predict (one model lock, and
    concurrent invocations of one function grouped into one model batch when batching is on);
    `max_pixels`: larger frames are refused before decoding (OPENAUTOGLM_MAX_PIXELS)."""
    routes = Blueprint("cvat", __name__)

    @routes.errorhandler(InvocationError)
    def invocation_error(error: InvocationError):
        return jsonify(error=str(error)), error.status

    @routes.get("/api/functions")
    def list_functions():
        return jsonify(catalog.all())

    @routes.get("/api/functions/<function>")
    def get_function(function: str):
        found = catalog.all().get(function)
        if found is None:
            raise InvocationError(f"no function {function!r}", 404)
        return jsonify(found)

    @routes.post("/api/function_invocations")
    def invoke():
        function = request.headers.get("x-nuclio-function-name")
        if not function:
            raise InvocationError("missing the x-nuclio-function-name header")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvocationError("the body must be a JSON object")
        image = _decode_image(body, max_pixels)
        threshold = _threshold(body)
        if function == SEGMENTER_ID:
            found = _found_object(body, image, catalog, calls)
            box = found.box if found is not None else _interaction_box(body, image)
            segmenter = catalog.segmenter()
            if found is not None and found.mask is not None and catalog.finder().segmenter is segmenter:
                mask, score = found.mask, found.score  # the finder segmented its find already, with this segmenter
            else:
                with calls.lock:
                    ((mask, score),) = segmenter.segment(image, [box])
            if found is not None and found.confidence is not None:
                score = found.confidence  # how often a find at that score is right (the click map)
            return jsonify(interactor_answer(mask, score, box))
        name = next((n for n in catalog.names if function_id(n) == function), None)
        pipeline = catalog.pipeline(name) if name else None
        if pipeline is None:
            raise InvocationError(f"no function {function!r}", 404)
        (prediction,) = calls.predict(pipeline, [image], catalog.labels(pipeline))
        return jsonify(detector_shapes(prediction.regions, threshold, masks=pipeline.segmenter is not None))

    return routes


def _decode_image(body: dict, max_pixels: int) -> Image.Image:
    encoded = body.get("image")
    if not isinstance(encoded, str) or not encoded:
        raise InvocationError("missing 'image' (the frame as base64)")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvocationError("'image' is not valid base64") from None
    try:
        return decode_image(data, "image", max_pixels)
    except TooManyPixels as error:
        raise InvocationError(f"'image': {error.reason}", 413) from None
    except AnnotationError:
        raise InvocationError("'image' does not decode to an image") from None


def _threshold(body: dict) -> float:
    value = body.get("threshold", 0.0)  # CVAT omits it when it is 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvocationError(f"'threshold' must be a number in [0, 1], got {value!r}")
    return float(value)


def _found_object(body: dict, image: Image.Image, catalog: FunctionCatalog, calls: ModelCalls) -> Region | None:
    """A single click without a box: the object a pipeline finds there (`objects_at`, also below its
    display threshold), whose box is the segmenter's prompt in place of a fixed margin."""
    points = body.get("pos_points") or []
    if body.get("obj_bbox") or len(points) != 1:
        return None
    pipeline = catalog.finder()
    try:
        click = Click(float(points[0][0]), float(points[0][1]))
    except (TypeError, ValueError, IndexError):
        raise InvocationError("obj_bbox must be [[x1, y1], [x2, y2]] and points [x, y] pairs") from None
    if pipeline is None:
        return None
    with calls.lock:
        found = pipeline.objects_at(image, [click], catalog.labels(pipeline))
    return found[0] if found else None


def _interaction_box(body: dict, image: Image.Image) -> Box:
    """The box to segment: obj_bbox when given, else around the positive points (with a margin)."""
    try:
        if body.get("obj_bbox"):
            (x1, y1), (x2, y2) = body["obj_bbox"]
        else:
            points = body.get("pos_points") or []
            if not points:
                raise InvocationError("an interactor call needs obj_bbox or at least one pos_points entry")
            xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
            margin = max(8.0, 0.1 * max(image.size))
            x1, y1, x2, y2 = min(xs) - margin, min(ys) - margin, max(xs) + margin, max(ys) + margin
    except (TypeError, ValueError):
        raise InvocationError("obj_bbox must be [[x1, y1], [x2, y2]] and points [x, y] pairs") from None
    width, height = image.size
    x1, x2 = sorted((max(0.0, min(width, float(x1))), max(0.0, min(width, float(x2)))))
    y1, y2 = sorted((max(0.0, min(height, float(y1))), max(0.0, min(height, float(y2)))))
    return Box(x1, y1, x2, y2)
