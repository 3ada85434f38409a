"""How CVAT's UI reads an interactor's answer (cvat-ui tools-control.tsx): the 2-D `mask` flattened
row by row into run lengths (background first), followed by `bounds`, or by the array's own extent
when there are none; that is CVAT's mask encoding, decoded here by cvat-sdk."""

from __future__ import annotations

import numpy as np
from cvat_sdk.masks import decode_mask


def decode_interactor_answer(answer: dict, width: int, height: int) -> np.ndarray:
    crop = np.asarray(answer["mask"], dtype=np.uint8)
    assert crop.ndim == 2, "the UI reads `mask` as a 2-D array"
    left, top, right, bottom = answer.get("bounds") or (0, 0, crop.shape[1] - 1, crop.shape[0] - 1)
    assert crop.shape == (bottom - top + 1, right - left + 1), "`bounds` must be the crop's inclusive extent"
    flat = crop.ravel()
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(edges).tolist()
    if flat[0]:
        runs = [0] + runs  # runs start with background
    return decode_mask(runs + [left, top, right, bottom], image_width=width, image_height=height)
