"""The ``driftgate`` parser is light and complete: importing the command loads no data or model
library, every subcommand and option is still listed by ``--help`` as before the parser moved to
:mod:`helpers.cli.commands`, and a subcommand's module is imported only when it runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.cli import commands, main
from helpers.serving.capture_compaction import PERIODS
from support import clean_env, run_cli

HEAVY = ("pandas", "numpy", "scipy", "sklearn", "mlflow", "matplotlib", "uvicorn", "papermill", "nbconvert",
         "jupyter_client", "pyarrow", "dask")

# usage line of `driftgate [COMMAND] --help` on a wide terminal: every option, its metavar, in order
USAGE = {
    "": "driftgate [-h] [--debug] COMMAND ...",
    "run": "driftgate run [-h] [--params PARAMS] [-p KEY=VALUE] [--steps STEPS] [--no-progress] [--force] [--debug]",
    "validate": "driftgate validate [-h] [--params PARAMS] [-p KEY=VALUE] [--debug]",
    "index": "driftgate index [-h] [--params PARAMS] [-p KEY=VALUE] [--debug]",
    "drift": "driftgate drift [-h] --baseline BASELINE --target TARGET [--params PARAMS] [-p KEY=VALUE] "
             "[--features FEATURES] [--time-column TIME_COLUMN] [--html HTML] [--json JSON] [--title TITLE] "
             "[--fail-on-drift] [--alert] [--debug]",
    "serve": "driftgate serve [-h] [--params PARAMS] [-p KEY=VALUE] [--model MODEL] [--host HOST] [--port PORT] "
             "[--no-capture] [--debug]",
    "replay": "driftgate replay [-h] [--params PARAMS] [-p KEY=VALUE] [--data DATA] --from DATE --to DATE "
              "[--rate RATE] [--batch BATCH] [--url URL] [--no-feedback] [--feedback-only] [--ca-file CA_FILE] "
              "[--debug]",
    "approve": "driftgate approve [-h] [--by BY] [--note NOTE] [--params PARAMS] [-p KEY=VALUE] [--debug] version",
    "rollback": "driftgate rollback [-h] [--reason REASON] [--by BY] [--params PARAMS] [-p KEY=VALUE] [--debug]",
    "status": "driftgate status [-h] [--json] [--params PARAMS] [-p KEY=VALUE] [--debug]",
    "monitor": "driftgate monitor [-h] [--params PARAMS] [-p KEY=VALUE] [--period {hour,day,week,month}] "
               "[--from TIME] [--to TIME] [--backfill] [--fail-on-drift] [--retrain | --no-retrain] [--debug]",
    "deploy": "driftgate deploy [-h] [--params PARAMS] [-p KEY=VALUE] [--if-new-version] [--debug]",
    "captures": "driftgate captures [-h] [--debug] ACTION ...",
    "captures compact": "driftgate captures compact [-h] [--before DATE] [--period {hour,day}] [--params PARAMS] "
                        "[-p KEY=VALUE] [--dir DIR]",
    "captures recover": "driftgate captures recover [-h] [--params PARAMS] [-p KEY=VALUE] [--dir DIR]",
    "package": "driftgate package [-h] [--params PARAMS] [-p KEY=VALUE] --out DIR [--model MODEL] [--force] "
               "[--wheel FILE] [--debug]",
}
SUMMARIES = {
    "run": "run the notebook pipeline into a new run folder",
    "validate": "check params and data without running anything",
    "index": "rewrite outputs/index.html from the run folders",
    "drift": "drift report for any pair of CSV or Parquet tables",
    "serve": "serve the champion model over HTTP with capture",
    "replay": "send a data window to the service as traffic and feedback",
    "approve": "approve a version waiting for approval and release it",
    "rollback": "move champion back to the previous version",
    "status": "show champion, challenger and previous with lineage",
    "monitor": "compare captured traffic with the champion's baseline",
    "deploy": "release the newest challenger waiting for approval",
    "captures": "maintain the capture store: compact, recover",
    "package": "write a deployable folder: model, pinned requirements, Dockerfile",
}


def _help(command: str) -> str:
    done = run_cli(*command.split(), "--help")
    assert done.returncode == 0, done.stderr
    return done.stdout


def _modules_after(code: str) -> set[str]:
    """The modules loaded after running ``code`` in a fresh interpreter."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=clean_env())
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


@pytest.mark.parametrize("command", list(USAGE))
def test_every_help_lists_its_options_as_before(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # the usage on one line
    text = _help(command)
    assert text.splitlines()[0] == f"usage: {USAGE[command]}"
    for option in (word.strip("[]") for word in USAGE[command].split() if word.startswith(("[-", "-"))):
        if option not in ("-h", "|"):
            assert f"  {option.split()[0]}" in text, f"{command}: {option} has no help line"


def test_top_level_help_lists_every_command_with_its_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    lines = [line.split(None, 1) for line in _help("").splitlines() if line.startswith("    ")]
    assert {name: summary.strip() for name, summary in lines} == SUMMARIES
    assert list(main.build_parser()._subparsers._group_actions[0].choices) == list(SUMMARIES)


def test_importing_the_command_loads_no_heavy_library() -> None:
    assert _heavy(_modules_after("import helpers.cli.main")) == []
    parse = "import helpers.cli.main as m; m.build_parser().parse_args(['drift', '--baseline', 'a', '--target', 'b'])"
    assert _heavy(_modules_after(parse)) == []
    show_help = "import helpers.cli.main as m\ntry:\n    m.main(['monitor', '--help'])\nexcept SystemExit:\n    pass"
    assert _heavy(_modules_after(show_help)) == []


def test_a_command_imports_its_own_module_only(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.yaml"
    loaded = _modules_after(f"import helpers.cli.main as m; assert m.main(['status', '--params', '{missing}']) == 2")
    assert "helpers.cli.ops" in loaded
    assert not {"helpers.cli.drift", "helpers.cli.serve", "helpers.cli.monitor", "helpers.cli.validate"} & loaded


def test_every_implementation_exists() -> None:
    import importlib

    parser = main.build_parser()
    subparsers = [parser._subparsers._group_actions[0]]
    found = []
    while subparsers:
        for command in subparsers.pop().choices.values():
            func = command.get_default("func")
            if func is not None:
                found.append(func)
            if command._subparsers is not None:
                subparsers.append(command._subparsers._group_actions[0])
    assert len(found) == 14  # 12 commands plus captures compact and recover
    for func in found:
        assert callable(getattr(importlib.import_module(func.module), func.function)), func


def test_capture_periods_match_the_compaction() -> None:
    assert commands.CAPTURE_PERIODS == PERIODS
