"""What a packaged service is made of: the model from the registry, and a wheel of driftgate.

:func:`download_model` copies a model (``models:/name@alias``, ``models:/name/version``,
``runs:/`` or a folder) into a plain MLflow model folder. :func:`driftgate_wheel` builds a wheel
of this driftgate from its source tree (``pip wheel --no-deps``, in a copy of the tree so
concurrent builds never share a ``build/`` folder), or copies the wheel it was installed from.
A registered model's folder gets MLflow's ``registered_model_meta`` file (its name and version),
as ``mlflow.artifacts.download_artifacts`` writes it for a ``models:/`` URI.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from helpers.core.errors import DriftgateError, ParamsError, RegistryError, ServeError
from helpers.serving.formatting import first_line
from helpers.serving.models import REGISTERED_MODEL_META, ModelRef, registry_client, resolve_version
from helpers.serving.requirements import DRIFTGATE

MLMODEL = "MLmodel"  # the file that makes a folder an MLflow model
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "LICENSE.txt", "setup.cfg", "setup.py")
WHEEL_TIMEOUT = 600.0  # seconds pip may take to build the wheel
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@dataclass(frozen=True)
class PackagedModel:
    """The model a package holds: what was asked, what it resolved to, where it came from."""

    uri: str
    name: str | None
    version: str | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``package.json``."""
        return {"uri": self.uri, "name": self.name, "version": self.version, "source": self.source}


def download_model(model_uri: str, dest: Path, *, tracking_uri: str | None = None) -> PackagedModel:
    """Download ``model_uri`` into the new folder ``dest`` (an MLflow model folder).

    Raises
    ------
    RegistryError
        When the registry has no such model, version or alias.
    ServeError
        When the model cannot be downloaded or is not an MLflow model.
    """
    ref = ModelRef.parse(model_uri)
    source, version = model_uri, None
    if ref is not None:
        client = registry_client(tracking_uri)
        version = resolve_version(client, ref)
        try:
            source = client.get_model_version_download_uri(ref.name, version)
        except Exception as exc:
            raise RegistryError(f"model registry: cannot locate {ref.name} version {version} "
                                f"({first_line(exc)})") from None
    with tempfile.TemporaryDirectory(prefix=".download-", dir=dest.parent) as scratch:
        local = _download(str(source), Path(scratch), model_uri, tracking_uri)
        if not (local / MLMODEL).is_file():
            raise ServeError(f"{model_uri}: not an MLflow model (no {MLMODEL} file in {source}); "
                             "pass --model a registered model, a runs:/ URI or a model folder")
        shutil.move(local, dest)
    if ref is not None:  # what MLflow itself writes when it downloads a models:/ URI
        meta = {"model_name": ref.name, "model_version": version}
        (dest / REGISTERED_MODEL_META).write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    return PackagedModel(model_uri, ref.name if ref else None, version, str(source))


def _download(source: str, scratch: Path, model_uri: str, tracking_uri: str | None) -> Path:
    import mlflow.artifacts

    saved = os.environ.get(PROGRESS_BAR_ENV)
    os.environ[PROGRESS_BAR_ENV] = "false"  # one summary line is printed instead
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(scratch),
                                                        tracking_uri=tracking_uri))
    except DriftgateError:
        raise
    except Exception as exc:
        raise ServeError(f"cannot download model {model_uri} from {source}: {first_line(exc)}") from None
    finally:
        if saved is None:
            os.environ.pop(PROGRESS_BAR_ENV, None)
        else:
            os.environ[PROGRESS_BAR_ENV] = saved


# --------------------------------------------------------------------------- the driftgate wheel


def driftgate_wheel(dest: Path, given: Path | None = None) -> Path:
    """A wheel of driftgate in ``dest``: ``given``, else built from the source tree, else the
    wheel driftgate was installed from.

    Raises
    ------
    ParamsError
        When ``given`` is not a driftgate wheel.
    ServeError
        When no wheel can be built or found, or pip fails to build it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if given is not None:
        return _copy_wheel(Path(given), dest)
    tree = source_tree()
    if tree is not None:
        return build_wheel(tree, dest)
    installed_from = installed_wheel()
    if installed_from is not None:
        return _copy_wheel(installed_from, dest)
    raise ServeError("driftgate is installed without its source tree or wheel; build one "
                     "(pip wheel --no-deps <driftgate source>) and pass it with --wheel FILE")


def source_tree() -> Path | None:
    """The folder whose ``pyproject.toml`` declares driftgate: this package's tree (``src/``
    layout), else the folder of an editable install; None when neither exists."""
    here = Path(__file__).resolve().parents[3]
    candidates = [here]
    url = _direct_url()
    if url and url.get("dir_info", {}).get("editable"):
        candidates.append(_file_path(url["url"]))
    return next((c for c in candidates if c is not None and _declares_driftgate(c)), None)


def installed_wheel() -> Path | None:
    """The local wheel file driftgate was installed from, when it still exists."""
    url = _direct_url()
    path = _file_path(url["url"]) if url and "archive_info" in url else None
    return path if path is not None and path.suffix == ".whl" and path.is_file() else None


def build_wheel(tree: Path, dest: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of ``tree`` into ``dest``; the wheel's path."""
    with tempfile.TemporaryDirectory(prefix="driftgate-source-") as scratch:
        copy = Path(scratch) / "driftgate"
        shutil.copytree(tree / "src", copy / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        for name in SOURCE_FILES:
            if (tree / name).is_file():
                shutil.copy2(tree / name, copy / name)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dest), str(copy)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=WHEEL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise ServeError(f"pip wheel of {tree} took over {WHEEL_TIMEOUT:.0f} s; pass a built wheel "
                             "with --wheel FILE") from None
    wheels = sorted(dest.glob(f"{DRIFTGATE}-*.whl"))
    if done.returncode != 0 or not wheels:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit code {done.returncode}"
        raise ServeError(f"pip wheel of {tree} failed: {why}; pass a built wheel with --wheel FILE")
    return wheels[-1]


def wheel_metadata(wheel: Path) -> tuple[str, list[str]]:
    """A wheel's version and its ``Requires-Dist`` lines (read from its METADATA)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise ParamsError(f"--wheel {wheel}: not a wheel (no .dist-info/METADATA); pass a driftgate wheel")
        fields = email.parser.Parser().parsestr(archive.read(name).decode("utf-8"), headersonly=True)
    return str(fields["Version"]), list(fields.get_all("Requires-Dist") or [])


def _copy_wheel(wheel: Path, dest: Path) -> Path:
    if not wheel.is_file() or not wheel.name.startswith(f"{DRIFTGATE}-") or wheel.suffix != ".whl":
        raise ParamsError(f"--wheel {wheel}: not a driftgate wheel file (driftgate-<version>-*.whl); "
                          "build one with pip wheel --no-deps <driftgate source>")
    return Path(shutil.copy2(wheel, dest / wheel.name))


def _direct_url() -> dict[str, Any] | None:
    try:
        text = metadata.distribution(DRIFTGATE).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    return json.loads(text) if text else None


def _file_path(url: str) -> Path | None:
    parsed = urlparse(url)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def _declares_driftgate(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file() or not (folder / "src").is_dir():
        return False
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {}).get("name") == DRIFTGATE
    except (OSError, tomllib.TOMLDecodeError):
        return False
