"""Reading a JSON file (`coco.load_json`, used by the COCO and Label Studio readers): orjson where
asked and it can, else Python's json with its own acceptance (NaN, integers past 64 bits) and its error
places; the garbage collector paused while a reader builds and restored after, errors included."""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path

import pytest

from openautoglm.converters import AnnotationError, coco, formats


def test_what_orjson_refuses_json_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"big": 123456789012345678901234567890, "nan": NaN, "text": "caf\\u00e9"}', encoding="utf-8")
    doc = coco.load_json(path)
    assert doc["big"] == 123456789012345678901234567890 and doc["nan"] != doc["nan"] and doc["text"] == "café"


def test_a_large_document_reads_as_json_reads_it(tmp_path: Path) -> None:
    doc = {"images": [{"id": i, "x": i / 7, "name": f"é{i}"} for i in range(2000)], "e": 1e-300, "neg": -0.0}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert coco.load_json(path) == expected and coco.load_json(path, fast=False) == expected


@pytest.mark.parametrize("content, reason", [
    (b'{"images": [1,\n 2,, 3]}', "invalid JSON at line 2 column 4"),
    (bytes(range(256)), "not UTF-8 text (byte 128): not a JSON file"),
])
def test_a_bad_file_is_one_error_naming_it(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(AnnotationError, match=re.escape(reason)) as caught:
        coco.load_json(path)
    assert caught.value.where == str(path)


def test_the_collector_is_paused_while_reading_and_restored_after(tmp_path: Path) -> None:
    seen = []
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg", "width": 2, "height": 2}]}))
    with formats.gc_paused():
        seen.append(gc.isenabled())
    assert seen == [False] and gc.isenabled()
    assert formats.load(path, "coco").items and gc.isenabled()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(AnnotationError):
        formats.load(tmp_path / "bad.json", "coco")
    assert gc.isenabled()
    gc.disable()
    try:
        formats.load(path, "coco")
        assert not gc.isenabled()  # a caller's own choice is left as it was
    finally:
        gc.enable()
