"""The VLM proposer on tiny random Qwen2.5-VL, Qwen3-VL and GLM-4V models, offline."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from openautoglm.model.inference.vlm import box_tokens

IMAGES = [Image.new("RGB", (300, 200), "red"), Image.new("RGB", (100, 150), "blue")]
ANSWERS = {  # what each family writes, from the model cards
    "qwen2_5_vl": '[{"bbox_2d": [0, 0, 56, 42], "label": "cat"}]',  # pixels of the 112x84 resized input
    "qwen3_vl": '[{"bbox_2d": [0, 0, 500, 500], "label": "cat"}]',
    "glm4v": "cat <|begin_of_box|>[0,0,500,500]<|end_of_box|>",
}


@pytest.fixture(scope="module", params=sorted(ANSWERS))
def vlm(request, tmp_path_factory):
    pytest.importorskip("transformers")
    import os

    from openautoglm.model.inference.vlm import VlmProposer
    from tests.model import tiny_models

    os.environ["HF_HUB_OFFLINE"] = "1"
    directory = getattr(tiny_models, request.param)(tmp_path_factory.mktemp(request.param))
    return VlmProposer(request.param, str(directory), max_new_tokens=12)


def test_generation_batch_equals_loop(vlm) -> None:
    batch = vlm.generate(IMAGES, ["cat", "dog"])
    for image, (text, ids, logprobs, size) in zip(IMAGES, batch):
        ((text_1, ids_1, logprobs_1, size_1),) = vlm.generate([image], ["cat", "dog"])
        assert (text, ids, size) == (text_1, ids_1, size_1)
        np.testing.assert_allclose(logprobs, logprobs_1, atol=1e-4)
        assert len(ids) <= 12 and np.all(logprobs <= 0)


def test_propose_end_to_end_returns_valid_regions(vlm) -> None:
    results = vlm.propose(IMAGES, ["cat", "dog"])
    assert len(results) == 2  # random weights write noise: usually no parsable box, never a crash
    for image, regions in zip(IMAGES, results):
        for region in regions:
            assert region.label in ("cat", "dog") and 0 <= region.score <= 1
            assert 0 <= region.box.x1 <= region.box.x2 <= image.width


def test_parsed_box_scored_from_its_tokens(vlm, monkeypatch) -> None:
    """The family's answer format through the real parser and scoring, with chosen log-probs."""
    answer = ANSWERS[vlm.family]
    ids = vlm.processor.tokenizer(answer, add_special_tokens=False)["input_ids"]
    logprobs = np.linspace(-0.5, -0.01, len(ids)).astype(np.float32)
    sizes = {"qwen2_5_vl": {"width": 112, "height": 84}}
    monkeypatch.setattr(vlm, "generate", lambda images, labels: [
        (answer, ids, logprobs, sizes.get(vlm.family, {"width": 0, "height": 0}))])
    ((region,),) = vlm.propose([IMAGES[0]], ["cat"])
    assert region.label == "cat"
    assert region.box.bounds() == pytest.approx((0, 0, 150, 100))
    # the box's own text: the JSON object without the list's brackets (Qwen), "label <box>" (GLM)
    own = logprobs[1:-1] if vlm.family.startswith("qwen") else logprobs
    assert region.score == pytest.approx(math.exp(float(np.mean(own))), rel=1e-5)


def test_box_tokens_overlap() -> None:
    # tokens ending at characters 3, 7, 12, 20: the span [5, 12) touches tokens 1 and 2
    assert box_tokens((5, 12), [3, 7, 12, 20]) == [1, 2]
    assert box_tokens((0, 3), [3, 7]) == [0]
    assert box_tokens((20, 25), [3, 7]) == []
