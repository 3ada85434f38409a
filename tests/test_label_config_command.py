"""`openautoglm label-config`: a labelling setup that parses back to the pipeline's labels."""

from __future__ import annotations

import json

import pytest

from openautoglm.cli.label_config import chosen_labels, label_config
from openautoglm.cli.main import main
from openautoglm.converters.label_studio_config import parse
from openautoglm.model.errors import ModelError


def test_a_label_studio_config_for_every_option_parses_to_its_labels() -> None:
    labels = ["person", 'a "quoted" & <odd> label']
    plain = parse(label_config(labels))
    assert [(t.kind, sorted(t.labels)) for t in plain] == [("rectanglelabels", sorted(labels))]
    everything = label_config(labels, masks=True, interactive=True)
    assert sorted(t.kind for t in parse(everything)) == ["brushlabels", "keypointlabels", "rectanglelabels"]
    assert everything.count('smart="true"') == 2


def test_cvat_labels_declare_the_confidence_attribute() -> None:
    labels = json.loads(label_config(["car", "bus"], "cvat"))
    assert [label["name"] for label in labels] == ["car", "bus"]
    assert all(label["attributes"] == [{"name": "confidence", "input_type": "text", "mutable": True, "values": [""]}]
               for label in labels)


def test_labels_come_from_the_pipeline_or_are_checked_against_it() -> None:
    assert chosen_labels(("person", "car"), None, "yolo") == ["person", "car"]
    assert chosen_labels(("person", "car"), "Car, person", "yolo") == ["Car", "person"]
    with pytest.raises(ModelError, match="yolo has no class 'truck'"):
        chosen_labels(("person", "car"), "truck", "yolo")
    with pytest.raises(ModelError, match="open-vocabulary: name the labels with --labels"):
        chosen_labels(None, "", "owlv2-sam")
    assert chosen_labels(None, "apple,banana", "owlv2-sam") == ["apple", "banana"]


def test_the_command_with_the_real_pipeline(shared, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAUTOGLM_MODEL_DIR", str(shared / "models"))
    monkeypatch.setenv("OPENAUTOGLM_OFFLINE", "1")
    assert main(["label-config", "--model", "yolo"]) == 0
    (target,) = parse(capsys.readouterr().out)
    assert len(target.labels) == 80 and "traffic light" in target.labels
