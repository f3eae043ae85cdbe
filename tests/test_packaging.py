"""The repository's own promises: environment.yml equals pyproject and follows the lock, the lock
covers pyproject, notebooks are clean."""

from __future__ import annotations

import json
import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support import ROOT

LOCK = ROOT / "requirements" / "lock.txt"


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_exactly_the_pyproject_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {*project["dependencies"], *project["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {r for r in pip_section if not r.startswith(("-e", "-c"))}
    assert {_name(r): r for r in listed} == {_name(r): r for r in wanted}


def _entries(text: str) -> list[str]:
    """The requirement entries of a requirements file: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _locked() -> dict[str, list[tuple[str, str, list[str]]]]:
    """name -> [(version, marker, hashes)] of requirements/lock.txt (a name may be pinned per marker)."""
    locked: dict[str, list[tuple[str, str, list[str]]]] = {}
    for entry in _entries(LOCK.read_text()):
        spec, *hashes = entry.split(" --hash=")
        requirement = Requirement(spec)
        (version,) = [s.version for s in requirement.specifier if s.operator == "=="]
        locked.setdefault(canonicalize_name(requirement.name), []).append(
            (version, str(requirement.marker or ""), hashes))
    return locked


def test_the_lock_pins_every_dependency_within_its_pyproject_range_with_hashes() -> None:
    """pyproject.toml keeps the compatible ranges; requirements/lock.txt pins the whole tree inside them."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    direct = [*pyproject["project"]["dependencies"], *pyproject["project"]["optional-dependencies"]["dev"],
              *pyproject["build-system"]["requires"]]
    locked = _locked()
    assert len(locked) > 150  # the whole tree, not only the direct dependencies
    for text in direct:
        requirement = Requirement(text)
        pins = locked.get(canonicalize_name(requirement.name))
        assert pins, f"{requirement.name} is not in {LOCK.name}: run make lock"
        for version, _marker, _hashes in pins:
            assert requirement.specifier.contains(version, prereleases=True), (text, version)
    for name, pins in locked.items():
        assert all(len(hashes) >= 1 and all(h.startswith("sha256:") for h in hashes) for _, _, hashes in pins), name
    assert "make lock" in LOCK.read_text().splitlines()[1]


def test_environment_yml_follows_the_lock() -> None:
    """Conda's pip installs pyproject's ranges constrained to the lock's versions (hash-free copy)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c requirements/constraints.txt" in pip_section and pip_section[-1] == "-e ."
    constraints = _entries((ROOT / "requirements" / "constraints.txt").read_text())
    assert constraints == [entry.split(" --hash=")[0] for entry in _entries(LOCK.read_text())]
    assert not any("--hash" in line for line in constraints)


def test_uv_is_bootstrapped_from_its_own_locked_entry() -> None:
    """make setup installs uv with pip from requirements/uv.txt: the lock's uv entry, hashes and all."""
    (entry,) = _entries((ROOT / "requirements" / "uv.txt").read_text())
    assert entry in _entries(LOCK.read_text()) and entry.startswith("uv==") and "--hash=sha256:" in entry


def test_set_up_installs_the_lock_with_hashes_and_ci_only_calls_make_test() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for installer in ("$(BIN)/python -m pip install", "$(UV) pip install"):
        install_lock = r".* --require-hashes --no-deps( --compile-bytecode)? -r \$\(LOCK\)"
        assert re.search(re.escape(installer) + install_lock, makefile), installer
    assert re.search(r"^\$\(STAMP\): \$\(LOCK\) pyproject.toml", makefile, re.M)
    assert re.search(r"^lock: ", makefile, re.M) and re.search(r"^test: \$\(STAMP\) browser", makefile, re.M)
    commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]


def test_notebooks_are_committed_without_outputs_and_are_parameterized() -> None:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert [p.stem for p in notebooks] == ["01_investigate", "02_drift_report", "03_train_evaluate", "04_deploy"]
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, path.name
        assert "params_file" in "".join(tagged[0]["source"])


def test_notebooks_define_no_functions() -> None:
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            assert not re.search(r"^\s*(def|class) ", source, re.M), path.name


def test_readme_first_screen_shows_the_two_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:20])
    assert "make run" in first_screen and "make test" in first_screen
    assert "make test" in (ROOT / ".ci" / "run").read_text()
