"""Label Studio brush RLE: byte-identical to label-studio-sdk's encoder, and decodes back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from label_studio_sdk.converter.brush import decode_rle, mask2rle

from openautoglm.converters import AnnotationError, brush_rle


def _sdk(mask: np.ndarray) -> list[int]:
    return mask2rle(mask.astype(np.uint8) * 255)


@settings(max_examples=80, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.booleans()))
def test_encode_is_byte_identical_to_the_sdk(mask: np.ndarray) -> None:
    encoded = brush_rle.encode(mask)
    assert encoded == _sdk(mask)
    assert np.array_equal(brush_rle.decode(encoded, mask.shape[1], mask.shape[0]), mask)


@pytest.mark.parametrize("shape, block", [
    pytest.param((1024, 1024), (slice(100, 900), slice(50, 1000)), id="long-runs-over-2**16"),
    pytest.param((300, 500), (slice(0, 300), slice(0, 500)), id="all-foreground"),
    pytest.param((64, 64), (slice(0, 0), slice(0, 0)), id="empty"),
])
def test_long_runs_and_edge_cases(shape, block) -> None:
    mask = np.zeros(shape, dtype=bool)
    mask[block] = True
    encoded = brush_rle.encode(mask)
    assert encoded == _sdk(mask)
    decoded_by_sdk = decode_rle(encoded).reshape(shape[0], shape[1], 4)[:, :, 3] > 0
    assert np.array_equal(decoded_by_sdk, mask)


def test_decode_rejects_size_mismatch() -> None:
    encoded = brush_rle.encode(np.ones((4, 4), dtype=bool))
    with pytest.raises(AnnotationError, match="holds 64 values but a 5x4 RGBA image has 80"):
        brush_rle.decode(encoded, 5, 4)
