"""What a non-editable install (pip install ., the Docker image) gets: every package, and an extra
the Dockerfile names that exists. An editable install maps whole folders and hides a missing one."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_every_package_folder_is_listed() -> None:
    options = _setup()["options"]
    listed = set(_lines(options["packages"]))
    folders = dict(line.split(" = ") for line in _lines(options["package_dir"]))
    found = set()
    for dotted, folder in folders.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([dotted, *relative.parts]))
    assert found - listed == set(), "packages missing from setup.cfg [options] packages"


def test_the_dockerfile_installs_an_extra_with_the_default_pipelines_runtime() -> None:
    extras = _setup()["options.extras_require"]
    default = re.search(r"^ARG EXTRAS=(\S+)$", (ROOT / "docker" / "Dockerfile").read_text(), re.M).group(1)
    assert default in extras
    assert any(line.startswith("ai-edge-litert") for line in _lines(extras[default]))
    assert any(line.startswith("ai-edge-litert") for line in _lines(extras["serve"]))


def test_every_data_file_a_package_reads_is_declared() -> None:
    """Pipelines (.yaml) and shipped calibrations (.json) must reach a non-editable install."""
    data = dict(_setup()["options.package_data"])
    assert data.get("openautoglm.model.inference.pipelines") == "*.yaml"
    assert data.get("openautoglm.model.scores.calibrations") == "*.json"
    assert list((ROOT / "model" / "scores" / "calibrations").glob("*.json")), "the default calibration is shipped"
