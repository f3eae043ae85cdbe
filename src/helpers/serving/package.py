"""``driftgate package``: a self-contained deployable folder for the scoring service.

The folder holds the model (an MLflow model folder downloaded from the registry), a wheel of
driftgate, a pinned ``requirements.txt`` (:mod:`helpers.serving.requirements`), the service's
params (``serve.yaml``: every interface, port 8080, captures on the ``/data`` volume, a bearer
token required), ``entrypoint.sh`` (``exec driftgate serve``), a ``Dockerfile`` (slim Python of
this minor version, a non-root user, a health check on ``/ping``), a ``compose.yaml`` (the
service beside an ``mlflow server``), ``package.json`` (what was packaged) and a README. The
text files are rendered from the Jinja2 templates in ``helpers/serving/templates/``.

The folder is built beside ``out`` and renamed into place, so ``out`` is either the old folder or
the whole new one. An existing non-empty ``out`` is refused unless ``force`` is given, and even
then only when it holds a previous package.

Example
-------
>>> result = package_service(params, out=Path("deploy"))  # doctest: +SKIP
>>> result.model.version  # doctest: +SKIP
'3'
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined

from helpers.core.config import Params
from helpers.core.errors import ParamsError
from helpers.serving.configure import model_uri_for
from helpers.serving.formatting import iso_time
from helpers.serving.package_sources import PackagedModel, download_model, driftgate_wheel, wheel_metadata
from helpers.serving.requirements import pinned_requirements

APP_DIR = "/app"  # where the image holds the folder
DATA_DIR = "/data"  # the mounted volume: captures and outputs
MLFLOW_DIR = "/mlflow"  # the mlflow server's volume in compose.yaml
PORT = 8080
USER = "driftgate"
MODEL_DIR = "model"
WHEEL_DIR = "wheels"
PARAMS_FILE = "serve.yaml"
ENTRYPOINT = "entrypoint.sh"
MANIFEST = "package.json"
REQUIREMENTS = "requirements.txt"
TEMPLATES = {"Dockerfile": "Dockerfile.j2", "compose.yaml": "compose.yaml.j2", "README.md": "README.md.j2",
             PARAMS_FILE: "serve.yaml.j2", ENTRYPOINT: "entrypoint.sh.j2"}
TABLE_SECTIONS = ("data", "windows", "gates", "monitor")  # copied so serve.yaml validates (task, metrics)


@dataclass(frozen=True)
class PackageResult:
    """What :func:`package_service` wrote."""

    out: Path
    model: PackagedModel
    wheel: Path
    requirements: list[str]
    image: str  # the image name the Dockerfile and compose.yaml use
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI."""
        version = f" version {self.model.version}" if self.model.version else ""
        return (f"driftgate package: {self.model.uri}{version} -> {self.out} ({len(self.requirements)} pinned "
                f"requirements, {self.wheel.name}); build it with: docker build -t {self.image} {self.out}")


def package_service(
    params: Params,
    *,
    out: str | Path,
    model_uri: str | None = None,
    force: bool = False,
    wheel: str | Path | None = None,
) -> PackageResult:
    """Write the deployable folder ``out`` for ``model_uri`` (default: the params' champion).

    Raises
    ------
    ParamsError
        When ``out`` is a file, or a non-empty folder without ``force`` (or with ``force``, a
        folder that is not a previous package).
    RegistryError, ServeError
        When the model cannot be found or downloaded, or the wheel cannot be built.
    """
    out = Path(out).expanduser().absolute()
    check_destination(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would make the published folder private
    try:
        result = _build(params, staging, out, model_uri or model_uri_for(params), wheel)
        publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _build(params: Params, staging: Path, out: Path, model_uri: str, wheel: str | Path | None) -> PackageResult:
    model = download_model(model_uri, staging / MODEL_DIR, tracking_uri=params.tracking_uri)
    built = driftgate_wheel(staging / WHEEL_DIR, Path(wheel) if wheel else None)
    version, requires = wheel_metadata(built)
    lines, notes = pinned_requirements(requires, staging / MODEL_DIR / REQUIREMENTS)
    (staging / REQUIREMENTS).write_text(
        f"# Pinned by driftgate package: driftgate {version}'s runtime closure and the model's requirements\n"
        + "".join(f"{line}\n" for line in lines), encoding="utf-8")
    context = template_context(params, model, version, notes)
    for name, template in TEMPLATES.items():
        (staging / name).write_text(render(template, **context), encoding="utf-8")
    (staging / ENTRYPOINT).chmod(0o755)
    manifest = {"model": model.to_dict(), "driftgate": version, "wheel": f"{WHEEL_DIR}/{built.name}",
                "python": platform.python_version(), "platform": context["platform"],
                "created": context["created"], "requirements": len(lines), "notes": notes}
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return PackageResult(out, model, out / WHEEL_DIR / built.name, lines, context["image"], notes)


# --------------------------------------------------------------------------- the destination


def check_destination(out: Path, force: bool) -> None:
    """Refuse a file, a non-empty folder without ``force``, and with ``force`` a non-empty
    folder that no earlier ``driftgate package`` wrote (so ``--force`` never deletes a project)."""
    if out.exists() and not out.is_dir():
        raise ParamsError(f"--out {out}: a file is in the way; choose another --out folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise ParamsError(f"--out {out}: the folder exists and is not empty; choose another --out or pass "
                          "--force to replace an earlier package")
    if not (out / MANIFEST).is_file():
        raise ParamsError(f"--out {out}: not a folder driftgate package wrote (no {MANIFEST}); --force replaces "
                          "only earlier packages: remove it yourself or choose another --out")


def publish(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``; an earlier ``out`` is moved aside first and removed after."""
    if not out.exists():
        staging.rename(out)
        return
    aside = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.old")
    out.rename(aside)
    try:
        staging.rename(out)
    except BaseException:
        aside.rename(out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


# --------------------------------------------------------------------------- the text files


def template_context(params: Params, model: PackagedModel, version: str, notes: list[str]) -> dict[str, Any]:
    """Everything the templates show."""
    name = model.name or params.mlflow.model_name
    return {
        "model": model, "model_name": name, "driftgate_version": version, "notes": notes,
        "python_minor": f"{sys.version_info.major}.{sys.version_info.minor}",
        "platform": f"{platform.system()} {platform.machine()}", "created": iso_time(time.time()),
        "image": image_name(model, name), "volume": f"{slug(name)}-data", "user": USER, "port": PORT,
        "app_dir": APP_DIR, "data_dir": DATA_DIR, "mlflow_dir": MLFLOW_DIR, "model_dir": MODEL_DIR,
        "wheel_dir": WHEEL_DIR, "params_file": PARAMS_FILE, "entrypoint": ENTRYPOINT,
        "serve": params.serve, "capture": params.serve.capture, "alias_poll_interval": params.serve.alias_poll_interval,
        "stop_grace": int(params.serve.shutdown_timeout) + 10, "mlflow_version": _mlflow_version(),
        "source": Path(params.source).name if params.source else "the params", "data_sections": table_sections(params),
    }


def table_sections(params: Params) -> str:
    """The params sections that describe the model's table (``data`` without its path), as YAML."""
    values = params.to_dict()
    sections = {key: values[key] for key in TABLE_SECTIONS}
    sections["data"] = {k: v for k, v in sections["data"].items() if k not in ("path", "read")}
    return yaml.safe_dump(sections, sort_keys=False, default_flow_style=None).rstrip() + "\n"


def image_name(model: PackagedModel, name: str) -> str:
    """``driftgate-<name>:<version>`` (``latest`` for an unregistered model), a valid image reference."""
    return f"driftgate-{slug(name)}:{model.version or 'latest'}"


def slug(text: str) -> str:
    """Lowercase letters, digits and single dashes: a name Docker accepts.

    >>> slug("Bike_Demand v2")
    'bike-demand-v2'
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "model"


def render(template: str, **context: Any) -> str:
    """Render one of the package templates."""
    return _environment().get_template(template).render(**context)


@cache
def _environment() -> Environment:
    # Not HTML: no autoescape. StrictUndefined: a missing value is an error, not an empty string.
    env = Environment(loader=PackageLoader("helpers.serving", "templates"), autoescape=False,
                      undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["scalar"] = json.dumps  # a YAML scalar that any string survives (JSON is YAML)
    return env


def _mlflow_version() -> str:
    from importlib import metadata

    return metadata.version("mlflow")
