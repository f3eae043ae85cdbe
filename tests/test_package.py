"""``driftgate package``: the deployable folder, its pinned requirements, and the service it runs.

The fast tests package the session's registered model (tests/serve_fixtures.py) with a stand-in
wheel (the installed driftgate's metadata in a zip: no pip build) and check the folder. The slow
test builds the real wheel, installs the folder into a fresh virtual environment from its pinned
requirements (as the Dockerfile does, without Docker), runs the entrypoint on 127.0.0.1 and
compares the answers with the model's offline predictions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.cli.main import main
from helpers.core.config import load_params
from helpers.core.errors import ServeError
from helpers.serving.client import ServeClient
from helpers.serving.package import package_service
from helpers.serving.requirements import applicable_requirements, pinned_requirements
from serve_fixtures import RegisteredModels, stop_process, write_serve_params

TOKEN = "package-test-token"


def stand_in_wheel(folder: Path) -> Path:
    """A zip named like driftgate's wheel, holding the installed distribution's METADATA."""
    dist = metadata.distribution("driftgate")
    wheel = folder / f"driftgate-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"driftgate-{dist.version}.dist-info/METADATA", dist.read_text("METADATA") or "")
    return wheel


@pytest.fixture
def packaged(tmp_path: Path, registered: RegisteredModels) -> Path:
    """The champion of the test registry, packaged with a stand-in wheel."""
    params = load_params(write_serve_params(tmp_path, registered))
    return package_service(params, out=tmp_path / "deploy", wheel=stand_in_wheel(tmp_path)).out


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["package", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- the folder


def test_the_folder_holds_the_model_wheel_and_recipes(packaged: Path, tmp_path: Path) -> None:
    names = {p.name for p in packaged.iterdir()}
    assert names == {"model", "wheels", "requirements.txt", "serve.yaml", "entrypoint.sh", "Dockerfile",
                     "compose.yaml", "README.md", "package.json"}
    assert (packaged / "model" / "MLmodel").is_file()
    meta = yaml.safe_load((packaged / "model" / "registered_model_meta").read_text())
    assert meta == {"model_name": "bike-serve-test", "model_version": "1"}
    assert [p.name for p in (packaged / "wheels").iterdir()] == [f"driftgate-{metadata.version('driftgate')}"
                                                                  "-py3-none-any.whl"]
    manifest = json.loads((packaged / "package.json").read_text())
    assert manifest["model"]["name"] == "bike-serve-test" and manifest["model"]["version"] == "1"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging left over
    assert oct(packaged.stat().st_mode & 0o777) == oct(0o755)


def test_dockerfile_runs_unprivileged_with_a_health_check_on_ping(packaged: Path) -> None:
    text = (packaged / "Dockerfile").read_text()
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert re.search(rf"^FROM python:{re.escape(minor)}-slim$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD .*urllib.*http://127\.0\.0\.1:8080/ping", text, re.M)
    assert "curl" not in text.split("HEALTHCHECK", 1)[1]
    assert re.search(r"^EXPOSE 8080$", text, re.M)
    assert re.search(r'^ENTRYPOINT \["/app/entrypoint\.sh"\]$', text, re.M)
    assert "pip install --no-deps -r requirements.txt" in text and "pip check" in text


def test_requirements_are_pinned_and_hold_the_models_own(packaged: Path) -> None:
    lines = [line for line in (packaged / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+!\-]+", line) for line in lines), lines
    pins = {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines}
    for name in ("mlflow", "scikit-learn", "pandas", "numpy", "pyyaml", "jinja2", "pyarrow"):
        assert pins[name] == metadata.version(name), name
    assert "driftgate" not in pins  # it ships as the wheel


def test_the_pins_satisfy_each_other() -> None:
    """What pip check proves in the image: every pinned distribution's requirements (markers
    of this environment, extras asked for) are met by the other pins."""
    lines, notes = pinned_requirements()
    pins = {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in lines}
    assert notes == [] and len(pins) == len(lines) > 50
    for name in pins:
        for requirement in applicable_requirements(metadata.distribution(name).requires or ()):
            wanted = canonicalize_name(requirement.name)
            if wanted == "driftgate":
                continue
            assert wanted in pins, f"{name} needs {requirement}"
            assert requirement.specifier.contains(pins[wanted], prereleases=True), f"{name}: {requirement}"
    for requirement in applicable_requirements(metadata.distribution("driftgate").requires or ()):
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)], prereleases=True)


def test_compose_runs_the_service_beside_an_mlflow_server(packaged: Path) -> None:
    compose = yaml.safe_load((packaged / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"mlflow", "scoring"}
    server = services["mlflow"]["entrypoint"]
    assert server[:2] == ["mlflow", "server"] and "--backend-store-uri=sqlite:////mlflow/mlflow.db" in server
    assert services["mlflow"]["volumes"] == ["mlflow:/mlflow"]
    scoring = services["scoring"]
    assert scoring["environment"]["DRIFTGATE_TOKEN"].startswith("${DRIFTGATE_TOKEN:?")  # compose refuses without
    assert scoring["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert scoring["ports"] == ["8080:8080"] and scoring["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) == {"mlflow", "bike-serve-test-data"}


def test_serve_params_listen_everywhere_and_require_a_token(packaged: Path) -> None:
    params = load_params(packaged / "serve.yaml")
    serve = params.serve
    assert (serve.host, serve.port, serve.model_uri) == ("0.0.0.0", 8080, "/app/model")
    assert serve.token_env == "DRIFTGATE_TOKEN" and serve.allow_public_without_token is False
    assert serve.capture_dir == "/data/captures" and params.mlflow.model_name == "bike-serve-test"
    assert params.data.features == load_params(packaged / "serve.yaml").data.features
    text = (packaged / "entrypoint.sh").read_text()
    assert text.startswith("#!/bin/sh") and re.search(r"^exec driftgate serve --params ", text, re.M)
    assert os.access(packaged / "entrypoint.sh", os.X_OK)


def test_the_entrypoint_refuses_to_start_without_a_token(packaged: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DRIFTGATE_TOKEN"}
    done = subprocess.run([str(packaged / "entrypoint.sh")], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "entrypoint: set DRIFTGATE_TOKEN to the bearer token clients must send (see README.md)"]


def test_a_model_folder_packages_too(packaged: Path, tmp_path: Path) -> None:
    params = load_params(tmp_path / "params.yaml")
    result = package_service(params, out=tmp_path / "again", model_uri=str(packaged / "model"),
                             wheel=stand_in_wheel(tmp_path))
    assert (result.model.name, result.model.version) == (None, None)
    assert (result.out / "model" / "model.skops").read_bytes() == (packaged / "model" / "model.skops").read_bytes()
    assert "driftgate-bike-serve-test:latest" in (result.out / "Dockerfile").read_text()  # mlflow.model_name


# --------------------------------------------------------------------------- requirements


def test_markers_and_extras_decide_which_requirements_apply() -> None:
    lines = ['a>1', 'b; extra == "x"', 'c; python_version < "3"', 'd; sys_platform == "nonesuch"',
             f'e; python_version == "{sys.version_info.major}.{sys.version_info.minor}"']
    assert [r.name for r in applicable_requirements(lines)] == ["a", "e"]
    assert [r.name for r in applicable_requirements(lines, frozenset({"x"}))] == ["a", "b", "e"]


def test_a_model_pin_wins_over_this_environment_and_says_so(tmp_path: Path) -> None:
    model_requirements = tmp_path / "requirements.txt"
    model_requirements.write_text("# from MLflow\nscikit-learn==1.0.2\nskops\n-c constraints.txt\n")
    lines, notes = pinned_requirements(["pandas>=2"], model_requirements)
    assert "scikit-learn==1.0.2" in lines and f"skops=={metadata.version('skops')}" in lines
    assert f"pandas=={metadata.version('pandas')}" in lines and f"numpy=={metadata.version('numpy')}" in lines
    assert notes == [f"scikit-learn: the model pins 1.0.2, this environment has {metadata.version('scikit-learn')}; "
                     "1.0.2 is packaged"]


def test_a_model_requirement_that_is_not_installed_must_be_pinned(tmp_path: Path) -> None:
    model_requirements = tmp_path / "requirements.txt"
    model_requirements.write_text("no-such-dist-for-driftgate==1.2\n")
    lines, _ = pinned_requirements(["pandas>=2"], model_requirements)
    assert "no-such-dist-for-driftgate==1.2" in lines
    model_requirements.write_text("no-such-dist-for-driftgate>=1\n")
    with pytest.raises(ServeError, match=r"^no-such-dist-for-driftgate \(required by the model\) is not installed"):
        pinned_requirements(["pandas>=2"], model_requirements)
    assert Requirement("x[y]==1").extras == {"y"}


# --------------------------------------------------------------------------- errors


def test_an_unknown_model_is_one_line_and_writes_nothing(
    tmp_path: Path, registered: RegisteredModels, capsys: pytest.CaptureFixture[str]
) -> None:
    params = write_serve_params(tmp_path, registered)
    out = tmp_path / "deploy"
    code, _, err = _cli(capsys, "--params", str(params), "--out", str(out), "--model", "models:/nope@champion",
                        "--wheel", str(stand_in_wheel(tmp_path)))
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "'nope'" in err and "alias 'champion'" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".deploy")]


def test_an_existing_folder_is_refused_unless_forced(
    packaged: Path, tmp_path: Path, registered: RegisteredModels, capsys: pytest.CaptureFixture[str]
) -> None:
    params = str(tmp_path / "params.yaml")
    wheel = str(stand_in_wheel(tmp_path))
    code, _, err = _cli(capsys, "--params", params, "--out", str(packaged), "--wheel", wheel)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"--out {packaged}: the folder exists and is not empty" in err and "--force" in err

    other = tmp_path / "project"
    (other / "src").mkdir(parents=True)
    code, _, err = _cli(capsys, "--params", params, "--out", str(other), "--wheel", wheel, "--force")
    assert code == 2 and "not a folder driftgate package wrote" in err and (other / "src").is_dir()

    registered.set_champion("2")
    try:
        code, out, _ = _cli(capsys, "--params", params, "--out", str(packaged), "--wheel", wheel, "--force")
    finally:
        registered.set_champion("1")
    assert code == 0 and "version 2 ->" in out
    assert json.loads((packaged / "package.json").read_text())["model"]["version"] == "2"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".deploy")]


def test_a_file_in_the_way_and_a_bad_wheel_are_one_line(
    tmp_path: Path, registered: RegisteredModels, capsys: pytest.CaptureFixture[str]
) -> None:
    params = str(write_serve_params(tmp_path, registered))
    (tmp_path / "taken").write_text("x")
    code, _, err = _cli(capsys, "--params", params, "--out", str(tmp_path / "taken"))
    assert code == 2 and "a file is in the way" in err
    (tmp_path / "other.whl").write_text("x")
    other = str(tmp_path / "other.whl")
    code, _, err = _cli(capsys, "--params", params, "--out", str(tmp_path / "d"), "--wheel", other)
    assert code == 2 and "not a driftgate wheel file" in err and not (tmp_path / "d").exists()
    code, _, err = _cli(capsys, "--params", str(tmp_path), "--out", str(tmp_path / "d"))
    assert code == 2 and "params file not found" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- the real thing


def _served_url(proc: subprocess.Popen[str]) -> str:
    """The URL in the service's start-up line (the first of its stdout lines that has one)."""
    seen = []
    for _ in range(20):
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"https?://127\.0\.0\.1:\d+", line)
        if found:
            return found.group(0)
        seen.append(line)
        if not line:
            break
    raise AssertionError(f"the service did not start: {''.join(seen)!r}")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # pip installs some 170 distributions into the fresh venv
def test_the_package_installs_in_a_fresh_venv_and_serves_the_models_predictions(
    tmp_path: Path, registered: RegisteredModels
) -> None:
    params = write_serve_params(tmp_path, registered)
    out = tmp_path / "deploy"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("MLFLOW_")}
    done = subprocess.run([sys.executable, "-m", "helpers.cli", "package", "--params", str(params), "--out", str(out)],
                          capture_output=True, text=True, timeout=900,
                          env={**env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""  # no progress bars nor warnings

    venv = tmp_path / "venv"
    # --no-compile: no bytecode for the whole closure up front (0.81x the time, measured side by side)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "--no-compile"]
    for command in ([sys.executable, "-m", "venv", str(venv)],
                    [*pip, "-r", str(out / "requirements.txt")],  # as the Dockerfile does
                    [*pip, *map(str, (out / "wheels").iterdir())],
                    [str(venv / "bin" / "pip"), "check"]):
        step = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env, cwd=tmp_path)
        assert step.returncode == 0, f"{command[:3]}: {step.stdout[-2000:]} {step.stderr[-2000:]}"

    captures = tmp_path / "captures"
    run_env = {**env, "PATH": f"{venv / 'bin'}:{env['PATH']}", "DRIFTGATE_TOKEN": TOKEN}
    proc = subprocess.Popen([str(out / "entrypoint.sh"), "--host", "127.0.0.1", "--port", "0",
                             "-p", f"serve.capture_dir={captures}", "-p", f"outputs.dir={tmp_path / 'outputs'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=run_env, cwd=tmp_path)
    try:
        url = _served_url(proc)
        with ServeClient(url, token=TOKEN) as client:
            served = np.concatenate([client.predict(registered.rows.iloc[i:i + 50]).values for i in range(0, 200, 50)])
            assert client.request("GET", "/ping").status == 200
        np.testing.assert_allclose(served, registered.expected["1"], rtol=0, atol=1e-9)
        with ServeClient(url) as anonymous:
            assert anonymous.request("GET", "/ping").status == 200
            assert anonymous.request("POST", "/invocations", b"{}", {"Content-Type": "application/json"}).status == 401
    finally:
        code, _, err = stop_process(proc)
    assert code == 0, err[-3000:]
    assert list(captures.rglob("*.parquet")), "no captured rows written"
    installed = subprocess.run([str(venv / "bin" / "python"), "-c", "import helpers; print(helpers.__file__)"],
                               capture_output=True, text=True, env=env, timeout=60)
    assert installed.stdout.startswith(str(venv))  # the wheel's copy served, not the source tree


def test_the_bundled_model_serves_and_captures_under_its_registered_name(packaged: Path) -> None:
    import yaml

    from helpers.serving.models import REGISTERED_MODEL_META, load_model

    meta = yaml.safe_load((packaged / "model" / REGISTERED_MODEL_META).read_text())
    model = load_model(str(packaged / "model"))
    assert (model.name, model.version) == (meta["model_name"], str(meta["model_version"]))
    assert model.capture_name == meta["model_name"] != "unregistered"
