"""No Docker engine runs here, so the Dockerfiles and compose files are checked by reading them:
every path they copy or build from exists, every extra they install is in setup.cfg, every
variable they set is one the code reads, and the services' names, ports and URLs agree."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
SOURCE_FOLDERS = ("backends", "model", "api", "converters")


def _read_by_code() -> set[str]:
    names = set()
    for folder in SOURCE_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r"\b(?:OPENAUTOGLM_[A-Z_]+|LABEL_STUDIO_URL|LABEL_STUDIO_API_KEY)\b",
                                    path.read_text()))
    return names


def _extras() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return set(parser["options.extras_require"])


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.cuda"])
def test_dockerfiles_copy_install_and_set_what_exists(name: str) -> None:
    text = (DOCKER / name).read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"{name}: COPY {source}: no such path"
    default = re.search(r"^ARG EXTRAS=(\S+)$", text, re.M).group(1)
    assert set(default.split(",")) <= _extras(), f"{name}: extras {default} not all in setup.cfg"
    set_here = set(re.findall(r"\b(OPENAUTOGLM_[A-Z_]+)=", text))
    assert set_here and set_here <= _read_by_code(), f"{name}: {set_here - _read_by_code()} are read by nothing"
    (port,) = re.findall(r"^EXPOSE (\d+)$", text, re.M)
    assert f'"--port", "{port}"' in text


def test_the_compose_file_wires_label_studio_postgresql_and_openautoglm() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    server = services["openautoglm"]
    context = (DOCKER / server["build"]["context"]).resolve()
    assert context == ROOT and (context / server["build"]["dockerfile"]).is_file()
    assert set(server["build"]["args"]["EXTRAS"].split(",")) <= _extras()
    environment = server["environment"]
    assert set(environment) <= _read_by_code(), set(environment) - _read_by_code()
    store = urlsplit(environment["OPENAUTOGLM_STORE"].replace("${POSTGRES_PASSWORD}", "secret"))
    database = services[store.hostname]["environment"]
    assert store.scheme == "postgresql" and store.port == 5432 and "postgres" in services[store.hostname]["image"]
    assert (store.username, store.path.lstrip("/")) == (database["POSTGRES_USER"], database["POSTGRES_DB"])
    label_studio = urlsplit(environment["LABEL_STUDIO_URL"])
    published = services[label_studio.hostname]["ports"]
    assert any(p.endswith(f":{label_studio.port}") for p in published)
    assert environment["OPENAUTOGLM_IMAGE_HOSTS"] == label_studio.netloc  # images come from Label Studio only
    live_test = (ROOT / "tests" / "integration" / "test_label_studio_live.py").read_text()
    tested = re.search(r"label-studio==([\d.]+)", live_test).group(1)
    assert services[label_studio.hostname]["image"].startswith(f"heartexlabs/label-studio:{tested}")
    assert "LABEL_STUDIO_API_KEY" in services[label_studio.hostname]["environment"]["LABEL_STUDIO_USER_TOKEN"]
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    used = {volume.split(":")[0] for service in services.values() for volume in service.get("volumes", [])}
    assert used == set(compose["volumes"])
    assert any(v.endswith(":/models") for v in server["volumes"])
    assert any(v.endswith(":/data") for v in server["volumes"])


def test_the_cvat_compose_file_sets_only_variables_the_code_reads() -> None:
    compose = yaml.safe_load((DOCKER / "docker-compose.cvat.yml").read_text())
    environment = compose["services"]["openautoglm"]["environment"]
    assert set(environment) <= _read_by_code()
    assert compose["services"]["cvat_server"]["environment"]["CVAT_NUCLIO_HOST"] == "openautoglm"
