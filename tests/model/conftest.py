from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture(scope="session")
def bus() -> Image.Image:
    ultralytics = pytest.importorskip("ultralytics")
    return Image.open(Path(ultralytics.__file__).parent / "assets" / "bus.jpg").convert("RGB")


@pytest.fixture(scope="session")
def models(shared: Path) -> Path:
    return shared / "models"
