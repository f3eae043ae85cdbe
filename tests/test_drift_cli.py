"""``driftgate drift`` through argparse directly and through the installed command."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers.cli import drift as drift_cli
from helpers.core.errors import DataError, ParamsError

ROOT = Path(__file__).resolve().parents[1]


def _tables(tmp_path: Path, shift: float) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    n = 1500
    base = pd.DataFrame({"x": rng.normal(0, 1, n), "y": rng.exponential(1, n), "c": rng.choice(list("abc"), n)})
    target = pd.DataFrame(
        {"x": rng.normal(shift, 1, n), "y": rng.exponential(1, n), "c": rng.choice(list("abc"), n)}
    )
    target["when"] = pd.date_range("2023-01-02", periods=n, freq="h")
    base.to_csv(tmp_path / "base.csv", index=False)
    target.iloc[: n // 2].to_parquet(tmp_path / "target-1.parquet")
    target.iloc[n // 2 :].to_parquet(tmp_path / "target-2.parquet")
    return tmp_path / "base.csv", tmp_path / "target-*.parquet"


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="driftgate")
    sub = parser.add_subparsers(dest="command", required=True)
    drift_cli.register(sub)
    args = parser.parse_args(["drift", *argv])
    return args.func(args)


def test_drifted_pair_writes_reports_and_fails_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, target = _tables(tmp_path, shift=3.0)
    html, out = tmp_path / "r.html", tmp_path / "r.json"
    code = _run(["--baseline", str(base), "--target", str(target), "--html", str(html), "--json", str(out),
                 "--time-column", "when", "--fail-on-drift", "--title", "CLI test"])
    assert code == 1
    data = json.loads(out.read_text())
    assert data["summary"]["drifted_features"] == ["x"]
    assert data["summary"]["target_rows"] == 1500  # both Parquet parts read
    assert data["over_time"]["period"] == "W"
    assert "<title>CLI test</title>" in html.read_text()
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith("drift: 1 of 3 features drifted")
    assert _run(["--baseline", str(base), "--target", str(target)]) == 0  # no --fail-on-drift


def test_no_drift_exits_zero(tmp_path: Path) -> None:
    base, target = _tables(tmp_path, shift=0.0)
    assert _run(["--baseline", str(base), "--target", str(target), "--fail-on-drift"]) == 0


def test_drift_only_params_file_overrides_and_alert(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    base, target = _tables(tmp_path, shift=3.0)
    params = tmp_path / "drift.yaml"
    params.write_text(
        "drift:\n  per_feature: {x: psi}\n  coefficient_sample: 0\n"
        "alerts:\n  file: alerts/drift.jsonl\n"
    )
    out = tmp_path / "r.json"
    code = _run(["--baseline", str(base), "--target", str(target), "--params", str(params), "--json", str(out),
                 "-p", "drift.drift_share=0.3", "--features", "x,c", "--alert"])
    assert code == 0
    data = json.loads(out.read_text())
    assert [f["feature"] for f in data["features"]] == ["x", "c"]
    assert data["features"][0]["test"] == "psi" and data["settings"]["drift_share"] == 0.3
    assert data["summary"]["coefficient"] is None
    (line,) = (tmp_path / "alerts" / "drift.jsonl").read_text().splitlines()
    assert json.loads(line)["drifted_features"] == ["x"]
    assert "alert file ok" in capsys.readouterr().out


def test_full_params_file_gives_features_and_settings(tmp_path: Path) -> None:
    settings = drift_cli.load_settings(str(ROOT / "params" / "default.yaml"), ["drift.bins=10"])
    assert settings.features and "temp" in settings.features
    assert settings.drift.bins == 10
    assert settings.alerts_file.name == "alerts.jsonl"


def test_user_mistakes_raise_driftgate_errors(tmp_path: Path) -> None:
    base, target = _tables(tmp_path, shift=0.0)
    with pytest.raises(DataError, match="missing.csv"):
        _run(["--baseline", str(tmp_path / "missing.csv"), "--target", str(target)])
    with pytest.raises(ParamsError, match="not found"):
        _run(["--baseline", str(base), "--target", str(target), "--params", str(tmp_path / "nope.yaml")])
    with pytest.raises(ParamsError, match="only drift"):
        _run(["--baseline", str(base), "--target", str(target), "-p", "split.seed=3"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("drift:\n  thresholds: {ks: high}\n")
    with pytest.raises(ParamsError, match="drift.thresholds.ks: expected a number"):
        _run(["--baseline", str(base), "--target", str(target), "--params", str(bad)])
    with pytest.raises(DataError, match="'nope' is in neither"):
        _run(["--baseline", str(base), "--target", str(target), "--features", "x,nope"])
    empty = tmp_path / "empty.csv"
    empty.write_text("x,y,c\n")
    with pytest.raises(DataError, match="the target is empty"):
        _run(["--baseline", str(base), "--target", str(empty)])


@pytest.mark.slow  # starts another driftgate process
def test_through_the_driftgate_command(tmp_path: Path) -> None:
    base, target = _tables(tmp_path, shift=3.0)
    command = [sys.executable, "-m", "helpers.cli", "drift", "--baseline", str(base), "--target", str(target)]
    drifted = subprocess.run([*command, "--fail-on-drift"], capture_output=True, text=True, timeout=120)
    assert drifted.returncode == 1, drifted.stderr
    assert "drift: 1 of 3 features drifted" in drifted.stdout
    broken = subprocess.run([*command[:-2], "--target", str(tmp_path / "nothing.parquet")],
                            capture_output=True, text=True, timeout=120)
    assert broken.returncode == 2
    assert broken.stderr.count("\n") == 1 and "Traceback" not in broken.stderr
    assert broken.stderr.startswith("driftgate: error:") and "nothing.parquet" in broken.stderr
