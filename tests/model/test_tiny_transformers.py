"""The real zero-shot proposer and segmenter classes on tiny random models, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from openautoglm.converters import Box, Shape
from openautoglm.model.inference.pipeline import Pipeline, PipelineSpec
from openautoglm.model.inference.settings import ModelSettings

IMAGES = [Image.new("RGB", (300, 200), "red"), Image.new("RGB", (100, 150), "blue")]


@pytest.fixture(scope="module", params=["owlv2", "grounding-dino"])
def zero_shot(request, tiny):
    from openautoglm.model.inference.zero_shot import ZeroShotProposer

    return ZeroShotProposer(request.param, str(tiny[request.param]), conf=0.0)


def test_zero_shot_regions_are_valid(zero_shot) -> None:
    results = zero_shot.propose(IMAGES, ["cat", "dog"])
    assert len(results) == 2 and all(results)
    for image, regions in zip(IMAGES, results):
        for region in regions:
            assert region.label in ("cat", "dog") and 0 <= region.score <= 1
            assert 0 <= region.box.x1 < region.box.x2 <= image.width
            assert 0 <= region.box.y1 < region.box.y2 <= image.height
        assert [r.score for r in regions] == sorted((r.score for r in regions), reverse=True)


def test_zero_shot_batch_equals_loop(zero_shot) -> None:
    # Compared before NMS and as sets of (box, scores) rows: random tiny weights tie many scores,
    # and Grounding DINO's top-k query selection may order tied queries either way.
    # textured, so ties are rare; same aspect, so no padding differences
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    images = [Image.fromarray(noise), Image.fromarray(noise).resize((150, 100))]
    batch_probabilities, batch_boxes = zero_shot.raw(images, ["cat", "dog"])
    for index, image in enumerate(images):
        probabilities, boxes = zero_shot.raw([image], ["cat", "dog"])
        _assert_same_rows(np.concatenate([batch_boxes[index], batch_probabilities[index]], axis=1),
                          np.concatenate([boxes[0], probabilities[0]], axis=1))


def _assert_same_rows(got: np.ndarray, want: np.ndarray, box_atol: float = 0.1, score_atol: float = 1e-2) -> None:
    """Every row of `want` has its own row in `got` within the tolerances, in any order (matched by
    distance, not by rounding then sorting, which splits two close values at a rounding edge)."""
    assert got.shape == want.shape
    tolerance = np.array([box_atol] * 4 + [score_atol] * (want.shape[1] - 4))
    close = (np.abs(got[:, None, :] - want[None, :, :]) <= tolerance).all(axis=2)  # got row x want row
    used = np.zeros(len(got), dtype=bool)
    for column in range(len(want)):
        candidates = np.flatnonzero(close[:, column] & ~used)
        assert len(candidates), f"no batch row within tolerance of {want[column]}"
        used[candidates[0]] = True


def test_zero_shot_without_labels_proposes_nothing(zero_shot) -> None:
    assert zero_shot.propose(IMAGES, []) == [[], []]


@pytest.mark.parametrize("kind", ["sam", "sam2", "mobile_sam"])
def test_segmenters_give_full_size_masks_and_scores(tiny, kind: str) -> None:
    from openautoglm.model.inference.pipeline import create_segmenter

    segmenter = create_segmenter({"model": str(tiny[kind])}, None, ModelSettings.from_env())
    assert type(segmenter).__name__ == ("UltralyticsSamSegmenter" if kind == "mobile_sam" else "SamSegmenter")
    results = segmenter.segment(IMAGES[0], [Box(10, 10, 100, 80), Box(50, 60, 290, 190, rotation=10)])
    assert len(results) == 2
    for mask, score in results:
        assert (mask.width, mask.height) == IMAGES[0].size and 0 <= score <= 1


def test_grabcut_finds_a_clear_object() -> None:
    from openautoglm.model.inference.segmenters import GrabCutSegmenter

    image = Image.new("RGB", (120, 100), "black")
    ImageDraw.Draw(image).ellipse((30, 20, 90, 80), fill="white")
    ((mask, score),) = GrabCutSegmenter().segment(image, [Box(20, 10, 100, 90)])
    truth = np.zeros((100, 120), dtype=bool)
    yy, xx = np.mgrid[0:100, 0:120]
    truth[((xx - 60) / 30) ** 2 + ((yy - 50) / 30) ** 2 <= 1] = True
    bitmap = mask.to_array()
    assert (bitmap & truth).sum() / (bitmap | truth).sum() > 0.9
    assert 0.4 < score < 0.7  # IoU of the mask box (60x60) with the loose prompt box (80x80): 0.56


def test_grabcut_gives_the_same_mask_whatever_ran_before(shared) -> None:
    """Its k-means draws from OpenCV's per-thread RNG; unseeded, the same box came out differently
    after other calls (seen as a CVAT mask that differed from the backend's own answer)."""
    from openautoglm.converters.files import load_displayed
    from openautoglm.model.inference.segmenters import GrabCutSegmenter

    image = load_displayed(shared / "data" / "coco128-train" / "images" / "000000000009.jpg")
    segmenter, box = GrabCutSegmenter(), Box(10, 10, 300, 300)
    first = segmenter.segment(image, [box])[0][0].to_array()
    segmenter.segment(image, [Box(100, 100, 400, 400), Box(0, 0, 200, 150)])
    assert np.array_equal(segmenter.segment(image, [box])[0][0].to_array(), first)


def test_pipeline_from_local_paths_adds_masks(tiny, tmp_path: Path) -> None:
    spec = PipelineSpec("tiny", ({"model": str(tiny["owlv2"]), "conf": 0.0},), {"model": str(tiny["sam"])})
    pipeline = Pipeline(spec)
    (prediction,) = pipeline.predict([IMAGES[0]], ["cat"])
    regions = prediction.regions
    assert regions and all(r.shape is Shape.MASK and r.mask.width == 300 for r in regions)
    assert all(0 <= e.mask_score <= 1 for e in prediction.evidence.regions)
    assert pipeline.version.startswith("tiny+") and pipeline.version.endswith(str(tiny["sam"]))


def test_grabcut_fallback_only_without_weights(tmp_path: Path, monkeypatch) -> None:
    from openautoglm.model.inference.pipeline import create_segmenter
    from openautoglm.model.inference.segmenters import GrabCutSegmenter

    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(tmp_path))
    monkeypatch.setenv("OPENAUTOGLM_OFFLINE", "1")
    settings = ModelSettings.from_env()
    fallback = create_segmenter({"model": "sam-vit-base", "fallback": "grabcut"}, None, settings)
    assert isinstance(fallback, GrabCutSegmenter)
    from openautoglm.model.errors import ModelError

    with pytest.raises(ModelError, match="sam-vit-base"):
        create_segmenter({"model": "sam-vit-base"}, None, ModelSettings.from_env())
