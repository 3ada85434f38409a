"""The two CVAT auto-annotation mask forms, checked against cvat-sdk's own encoder and decoder."""

from __future__ import annotations

import numpy as np
import pytest
from cvat_sdk.masks import decode_mask, encode_mask
from hypothesis import given, settings
from hypothesis import strategies as st

from openautoglm.converters import AnnotationError, Mask, cvat_wire


@st.composite
def masks(draw) -> np.ndarray:
    height, width = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    bitmap = np.zeros((height, width), dtype=bool)
    for _ in range(draw(st.integers(1, 3))):
        x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        bitmap[y:draw(st.integers(y + 1, height)), x:draw(st.integers(x + 1, width))] = True
    bitmap[draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))] ^= True
    if not bitmap.any():
        bitmap[0, 0] = True
    return bitmap


@settings(max_examples=80, deadline=None)
@given(masks())
def test_sdk_form_matches_cvat_sdk(bitmap: np.ndarray) -> None:
    height, width = bitmap.shape
    encoded = cvat_wire.to_sdk(Mask.from_array(bitmap))
    ys, xs = np.nonzero(bitmap)
    assert encoded == encode_mask(bitmap, bbox=[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    assert np.array_equal(decode_mask(encoded, image_width=width, image_height=height), bitmap)
    assert np.array_equal(cvat_wire.from_sdk(encoded, width, height).to_array(), bitmap)


@settings(max_examples=80, deadline=None)
@given(masks())
def test_nuclio_form_is_crop_bitmap_then_inclusive_box(bitmap: np.ndarray) -> None:
    height, width = bitmap.shape
    encoded = cvat_wire.to_nuclio(Mask.from_array(bitmap))
    ys, xs = np.nonzero(bitmap)
    box = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]
    assert encoded[-4:] == box
    assert encoded[:-4] == bitmap[box[1]:box[3] + 1, box[0]:box[2] + 1].astype(int).ravel().tolist()
    assert np.array_equal(cvat_wire.from_nuclio(encoded, width, height).to_array(), bitmap)


@pytest.mark.parametrize("decode, values, reason", [
    pytest.param(cvat_wire.from_nuclio, [1, 1, 1, 0, 0, 1, 1], "mask has 3 values but its 2x2 box needs 4",
                 id="nuclio-length"),
    pytest.param(cvat_wire.from_sdk, [1, 2, 0, 0, 1, 1], "covers 3 pixels but its 2x2 box has 4", id="sdk-length"),
    pytest.param(cvat_wire.from_sdk, [0, 4, 9, 9, 10, 10], "lies outside the 10x10 image", id="outside-image"),
])
def test_malformed_wire_masks(decode, values, reason: str) -> None:
    with pytest.raises(AnnotationError, match=reason):
        decode(values, 10, 10)
