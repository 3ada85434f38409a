import logging
import os
from pathlib import Path

import pytest
from PIL import Image

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


@pytest.fixture(scope="session")
def bus() -> Image.Image:
    ultralytics = pytest.importorskip("ultralytics")
    return Image.open(Path(ultralytics.__file__).parent / "assets" / "bus.jpg").convert("RGB")


@pytest.fixture(scope="session")
def models(shared: Path) -> Path:
    return shared / "models"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Tiny random OWLv2, Grounding DINO, SAM, SAM2 and MobileSAM saved with save_pretrained, loaded back offline."""
    pytest.importorskip("transformers")
    import os

    from tests.model import tiny_models

    os.environ["HF_HUB_OFFLINE"] = "1"
    root = tmp_path_factory.mktemp("tiny-models")
    return {"owlv2": tiny_models.owlv2(root / "owlv2"), "grounding-dino": tiny_models.grounding_dino(root / "gdino"),
            "sam": tiny_models.sam(root / "sam"), "sam2": tiny_models.sam2(root / "sam2"),
            "mobile_sam": tiny_models.mobile_sam(root / "mobile_sam" / "mobile_sam.pt")}


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server the tests start themselves; skipped, saying why, only where
    neither the server binaries nor psycopg can be had."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'openautoglm[postgres]')")
    from benchmarks.postgres_server import PostgresServer, binaries

    if binaries() is None:
        pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="openautoglm-postgres-"))  # pytest's own folders are root-only
    server = PostgresServer(folder).start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """An empty database for one test."""
    import re

    return postgres_server.fresh_database(re.sub(r"[^a-z0-9_]", "_", request.node.name.lower())[:60])


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    """Quiet before pytest's summary: the background threads of test servers whose databases are
    gone by now keep logging retries with tracebacks, and formatting one calls ast.parse, which
    CPython 3.11 does not make thread-safe: racing pytest's own (it rewrites a plugin it imports
    for the summary), it ended one local run in "SystemError: AST constructor recursion depth
    mismatch" after every test had passed."""
    logging.disable(logging.CRITICAL)
