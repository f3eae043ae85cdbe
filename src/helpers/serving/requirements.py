"""Pinned requirements of a packaged service: driftgate's installed closure plus the model's own.

:func:`installed_closure` walks the requirements of installed distributions (from
``importlib.metadata``), starting at ``driftgate``: a requirement counts when its marker holds in
this environment (for the extras asked of its parent), and each is pinned to the version
installed here. :func:`pinned_requirements` merges a model's ``requirements.txt`` in: its
packages join the walk, and where the model pins an exact version that differs from this
environment's, the model's pin wins (it is what the model was saved with) and a note says so.

Example
-------
>>> lines, notes = pinned_requirements(model_requirements=Path("model/requirements.txt"))  # doctest: +SKIP
>>> lines[:2]  # doctest: +SKIP
['aiohappyeyeballs==2.6.1', 'aiohttp==3.12.15']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from helpers.core.errors import ServeError

DRIFTGATE = "driftgate"  # the distribution of this package; it is shipped as a wheel, not pinned


@dataclass
class Closure:
    """Installed distributions reached from some roots: canonical name -> (name, version)."""

    pins: dict[str, tuple[str, str]] = field(default_factory=dict)
    _seen: set[tuple[str, frozenset[str]]] = field(default_factory=set)

    def add(self, requirement: Requirement, *, required_by: str) -> None:
        """Add ``requirement``'s installed distribution and, recursively, what it requires."""
        key = canonicalize_name(requirement.name)
        extras = frozenset(canonicalize_name(e) for e in requirement.extras)
        if (key, extras) in self._seen:
            return
        self._seen.add((key, extras))
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise ServeError(
                f"{requirement.name} (required by {required_by}) is not installed in this environment; "
                f"pip install it here, then package again"
            ) from None
        self.pins[key] = (dist.metadata["Name"], dist.version)
        for child in applicable_requirements(dist.requires or (), extras):
            self.add(child, required_by=dist.metadata["Name"])


def applicable_requirements(lines: Iterable[str], extras: frozenset[str] = frozenset()) -> list[Requirement]:
    """The requirements among ``lines`` whose marker holds here, for the ``extras`` asked.

    A requirement of an extra (``; extra == "x"``) counts only when ``x`` is asked.

    Examples
    --------
    >>> [str(r) for r in applicable_requirements(['a>1', 'b; extra == "x"', 'c; python_version < "3"'])]
    ['a>1']
    """
    environment = default_environment()
    wanted = []
    for line in lines:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({**environment, "extra": e}) for e in (*extras, "")):
            wanted.append(requirement)
    return wanted


def installed_closure(roots: Iterable[Requirement], required_by: str) -> Closure:
    """The installed closure of ``roots``."""
    closure = Closure()
    for requirement in roots:
        closure.add(requirement, required_by=required_by)
    return closure


def model_requirement_lines(path: Path) -> list[str]:
    """Requirement lines of a model's ``requirements.txt`` (comments, blanks and pip options dropped)."""
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def exact_pin(requirement: Requirement) -> str | None:
    """The version of an ``==`` pin (without wildcards), else None."""
    pins = [s.version for s in requirement.specifier if s.operator in ("==", "===") and "*" not in s.version]
    return pins[0] if len(pins) == 1 else None


def pinned_requirements(
    driftgate_requires: Iterable[str] | None = None, model_requirements: Path | None = None
) -> tuple[list[str], list[str]]:
    """``name==version`` lines for driftgate's closure and the model's requirements, and notes.

    Parameters
    ----------
    driftgate_requires : iterable of str, optional
        Driftgate's ``Requires-Dist`` lines (of the wheel being shipped); default: those of the
        installed distribution.
    model_requirements : Path, optional
        The model's ``requirements.txt`` (MLflow writes one into every model folder).

    Returns
    -------
    (lines, notes)
        Sorted pinned lines (driftgate itself left out: it ships as a wheel), and one note per
        model pin that overrode this environment's version.

    Raises
    ------
    ServeError
        When a required distribution is not installed here (and the model does not pin it).
    """
    if driftgate_requires is None:
        driftgate_requires = metadata.distribution(DRIFTGATE).requires or ()
    closure = installed_closure(applicable_requirements(driftgate_requires), DRIFTGATE)
    model_pins: dict[str, tuple[str, str]] = {}
    for line in model_requirement_lines(model_requirements) if model_requirements else []:
        requirement = _parse(line, model_requirements)
        if not applicable_requirements([line]):
            continue
        pinned = exact_pin(requirement)
        if pinned is not None:
            model_pins[canonicalize_name(requirement.name)] = (requirement.name, pinned)
        if _installed(requirement.name) or pinned is None:
            closure.add(requirement, required_by="the model")
    notes = []
    for key, (name, version) in model_pins.items():
        here = closure.pins.get(key)
        if here is not None and here[1] != version:
            notes.append(f"{name}: the model pins {version}, this environment has {here[1]}; {version} is packaged")
        closure.pins[key] = (here[0] if here else name, version)
    closure.pins.pop(canonicalize_name(DRIFTGATE), None)
    lines = [f"{name}=={version}" for _, (name, version) in sorted(closure.pins.items())]
    return lines, notes


def _parse(line: str, source: Path | None) -> Requirement:
    try:
        return Requirement(line)
    except InvalidRequirement as exc:
        raise ServeError(f"{source}: {line!r} is not a requirement ({exc}); fix the model's requirements") from None


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True
