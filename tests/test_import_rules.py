"""Dependencies run one way: backends -> model -> converters, and inside model/ each subpackage
imports only what its rule allows (docs/architecture.md). Read from the source, so a new import
that breaks a rule fails here, whether or not a test happens to execute it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "openautoglm"

# folder -> (its dotted name, the openautoglm packages its modules may import)
RULES = {
    "converters": ("converters", ("converters",)),
    "model/scores": ("model.scores", ("converters", "model.errors", "model.scores")),
    "model/inference": ("model.inference", ("converters", "model.errors", "model.scores", "model.inference")),
    "model/reviews": ("model.reviews", ("converters", "model.errors", "model.scores", "model.reviews")),
    "backends": ("backends", ("converters", "model", "backends")),
}


def _imports(path: Path, dotted: str) -> set[str]:
    """Every openautoglm module this file imports, relative imports resolved, minus the prefix."""
    tree = ast.parse(path.read_text(), str(path))
    package = [dotted, *path.parent.relative_to(ROOT / dotted.replace(".", "/")).parts]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                found.add(".".join([PACKAGE, *base, *([node.module] if node.module else [])]))
            else:
                found.add(node.module)
    return {name[len(PACKAGE) + 1:] for name in found if name.startswith(PACKAGE + ".")}


def _cases():
    for folder, (dotted, allowed) in RULES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield pytest.param(path, dotted, allowed, id=str(path.relative_to(ROOT)))


@pytest.mark.parametrize("path, dotted, allowed", list(_cases()))
def test_a_module_imports_only_what_its_package_may(path: Path, dotted: str, allowed: tuple[str, ...]) -> None:
    broken = sorted(name for name in _imports(path, dotted)
                    if not any(name == rule or name.startswith(rule + ".") for rule in allowed))
    assert not broken, f"{path.relative_to(ROOT)} imports {broken}; its package may import only {allowed}"


def test_the_error_module_imports_nothing_of_the_package() -> None:
    assert _imports(ROOT / "model" / "errors.py", "model") == set()


def test_the_rules_see_a_forbidden_import() -> None:
    """The checker itself: a converter importing the model is caught, relative or absolute."""
    probe = ROOT / "converters" / "_probe_for_rules.py"
    probe.write_text("from ..model.scores import calibration\nimport openautoglm.backends.app\n")
    try:
        assert _imports(probe, "converters") == {"model.scores", "backends.app"}
    finally:
        probe.unlink()


def test_reading_the_canonical_types_loads_no_format_and_no_model() -> None:
    """Lazy re-exports: `openautoglm` and `openautoglm.converters` import the formats and the
    model stack only when asked for them."""
    import subprocess
    import sys

    probe = ("import sys, openautoglm, openautoglm.model.scores.scoring; from openautoglm import Region; "
             "print(sorted(m for m in sys.modules if m.startswith(('openautoglm.converters.formats', "
             "'openautoglm.converters.coco', 'openautoglm.model.inference', 'openautoglm.autolabel'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_model_reads_the_environment_in_one_place() -> None:
    """Settings are read once into a typed object and passed down: in model/ only ModelSettings
    reads a variable (backends/settings.py builds it for the server, the command line for itself)."""
    import re

    readers = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "model").rglob("*.py")
                     if re.search(r"os\.environ(?!\.setdefault)|os\.getenv", path.read_text()))
    assert readers == ["model/inference/settings.py"]
