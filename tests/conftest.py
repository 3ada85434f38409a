import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"
SHARED = Path(os.environ.get("OPENAUTOGLM_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"real data not found in {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS
