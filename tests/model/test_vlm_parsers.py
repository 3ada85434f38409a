"""VLM grounding parsers on outputs written from each model card's documented format."""

from __future__ import annotations

import logging

import pytest

from openautoglm.model.inference.vlm_parsers import (
    parse_florence2,
    parse_glm,
    parse_moondream,
    parse_paligemma,
    parse_qwen3,
    parse_qwen25,
)

W, H = 640, 480


def boxes(found):
    return [(b.label, round(b.x1, 3), round(b.y1, 3), round(b.x2, 3), round(b.y2, 3)) for b in found]


@pytest.mark.parametrize("text, expected", [
    pytest.param("The dog is at <|begin_of_box|>[100,250,500,750]<|end_of_box|>.", [("dog", 64, 120, 320, 360)],
                 id="glm-square-brackets"),
    pytest.param("<think>The user wants cats and dogs. I see one of each.</think>cat "
                 "<|begin_of_box|>[[0,0,500,500]]<|end_of_box|>, "
                 "dog <|begin_of_box|>(500, 500, 1000, 1000)<|end_of_box|>",
                 [("cat", 0, 0, 320, 240), ("dog", 320, 240, 640, 480)], id="glm-thinking-and-bracket-styles"),
    pytest.param("dog <|begin_of_box|>[100,250,500,750]<|end_of_box|> dog "
                 "<|begin_of_box|>[100,250,500,750]<|end_of_box|>",
                 [("dog", 64, 120, 320, 360)], id="glm-duplicate"),
    pytest.param("dog <|begin_of_box|>[100,250,1500,750]<|end_of_box|> dog <|begin_of_box|>[100,250,500", [],
                 id="glm-out-of-range-and-truncated"),
])
def test_glm(text, expected) -> None:
    assert boxes(parse_glm(text, ["cat", "dog"], W, H)) == expected


def test_glm_bare_box_for_a_single_label() -> None:
    assert boxes(parse_glm("<|begin_of_box|>[0,0,1000,1000]<|end_of_box|>", ["bus"], W, H)) == [("bus", 0, 0, 640, 480)]


def test_qwen3_json_in_fences_normalised_to_1000() -> None:
    text = ('```json\n[\n  {"bbox_2d": [100, 200, 300, 400], "label": "person"},\n  {"bbox_2d": [0, 0, 1000, 1000], '
            '"label": "Bus"}\n]\n```')
    assert boxes(parse_qwen3(text, ["bus", "person"], W, H)) == [("person", 64, 96, 192, 192), ("bus", 0, 0, 640, 480)]


def test_qwen3_truncated_json_and_unknown_labels_are_skipped(caplog) -> None:
    text = ('[{"bbox_2d": [100, 200, 300, 400], "label": "giraffe"}, {"bbox_2d": [10, 20, 30, 40], "label": "person"}, '
            '{"bbox_2d": [5, 6')
    with caplog.at_level(logging.WARNING):
        assert boxes(parse_qwen3(text, ["person"], W, H)) == [("person", 6.4, 9.6, 19.2, 19.2)]
    assert "unknown label 'giraffe'" in caplog.text


def test_qwen25_maps_back_from_the_resized_input() -> None:
    # a 640x480 image resized by the processor to 644x476 (multiples of 28)
    text = '[{"bbox_2d": [322, 238, 644, 476], "label": "car"}]'
    assert boxes(parse_qwen25(text, ["car"], W, H, 644, 476)) == [("car", 320, 240, 640, 480)]


def test_florence2_loc_bins() -> None:
    text = "</s><s>car<loc_0><loc_0><loc_499><loc_999>person<loc_500><loc_500><loc_999><loc_999></s>"
    assert boxes(parse_florence2(text, ["car", "person"], 1000, 1000)) == [
        ("car", 0.5, 0.5, 499.5, 999.5), ("person", 500.5, 500.5, 999.5, 999.5)]


def test_paligemma_y_before_x_1024_bins() -> None:
    text = "<loc0256><loc0000><loc0768><loc0512> cat ; <loc0000><loc0512><loc1024><loc1024> dog"
    assert boxes(parse_paligemma(text, ["cat", "dog"], 1024, 512)) == [("cat", 0, 128, 512, 384), ("dog", 512, 0, 1024,
                                                                                                   512)]


def test_moondream_unit_floats() -> None:
    text = '{"objects": [{"x_min": 0.25, "y_min": 0.5, "x_max": 0.75, "y_max": 1.0}]}'
    assert boxes(parse_moondream(text, ["cup"], W, H)) == [("cup", 160, 240, 480, 480)]
