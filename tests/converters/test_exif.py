"""An EXIF-rotated JPEG: sizes and coordinates follow the image as displayed, not as stored."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from openautoglm.converters import Box, load
from openautoglm.converters.files import displayed_size, load_displayed


def _rotated_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise: portrait
    Image.new("RGB", (40, 20), "red").save(path, exif=exif)
    return path


def test_displayed_size_applies_orientation(tmp_path: Path) -> None:
    photo = _rotated_jpeg(tmp_path / "photo.jpg")
    with Image.open(photo) as stored:
        assert stored.size == (40, 20)
    assert displayed_size(photo) == (20, 40)
    assert load_displayed(photo).size == (20, 40)


def test_yolo_denormalises_with_the_displayed_size(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    _rotated_jpeg(tmp_path / "images" / "photo.jpg")
    (tmp_path / "classes.txt").write_text("cat\n")
    (tmp_path / "labels" / "photo.txt").write_text("0 0.5 0.5 1 1\n")
    (item,) = load(tmp_path, "yolo").items
    assert (item.image.width, item.image.height) == (20, 40)
    assert item.regions[0].box == Box(0, 0, 20, 40)


def test_label_studio_task_without_results_takes_the_displayed_size(tmp_path: Path) -> None:
    _rotated_jpeg(tmp_path / "photo.jpg")
    (tmp_path / "tasks.json").write_text('[{"id": 1, "data": {"image": "/data/upload/1/photo.jpg"}}]')
    (item,) = load(tmp_path / "tasks.json", "label_studio", images_dir=tmp_path).items
    assert (item.image.width, item.image.height) == (20, 40)


def test_load_displayed_rotates_and_converts_only_what_needs_it(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    gray = Image.new("L", (40, 20), 0)
    gray.paste(255, (0, 0, 10, 20))  # white band on the stored left edge: the displayed top
    gray.save(tmp_path / "gray.jpg", exif=exif, quality=100)
    shown = load_displayed(tmp_path / "gray.jpg")
    assert (shown.mode, shown.size) == ("RGB", (20, 40))
    assert shown.getpixel((10, 2))[0] > 200 and shown.getpixel((10, 37))[0] < 50

    Image.new("RGBA", (8, 6), (10, 20, 30, 0)).save(tmp_path / "alpha.png")
    assert load_displayed(tmp_path / "alpha.png").mode == "RGB"

    plain = Image.new("RGB", (8, 6), (200, 100, 50))
    plain.save(tmp_path / "plain.png")
    loaded = load_displayed(tmp_path / "plain.png")
    assert (loaded.mode, loaded.size, loaded.getpixel((3, 3))) == ("RGB", (8, 6), (200, 100, 50))


def test_an_image_over_the_pixel_budget_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    import pytest

    from openautoglm.converters import AnnotationError
    from openautoglm.model.errors import ModelError
    from openautoglm.model.inference.settings import ModelSettings

    path = tmp_path / "wide.png"
    Image.new("L", (400, 300)).save(path)
    assert load_displayed(path, max_pixels=120_000).size == (400, 300)
    with pytest.raises(AnnotationError, match=r"400x300 is 120,000 pixels, over the limit of 119,999 "
                                              r"\(OPENAUTOGLM_MAX_PIXELS\)"):
        load_displayed(path, max_pixels=119_999)
    assert ModelSettings.from_env({"OPENAUTOGLM_MAX_PIXELS": "250_000_000"}).max_pixels == 250_000_000
    assert ModelSettings.from_env({}).max_pixels == 100_000_000
    with pytest.raises(ModelError, match="OPENAUTOGLM_MAX_PIXELS must be a positive whole number"):
        ModelSettings.from_env({"OPENAUTOGLM_MAX_PIXELS": "lots"})
