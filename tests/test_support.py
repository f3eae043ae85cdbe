"""The test helpers themselves: a missing external tool fails a test with how to install it."""

from __future__ import annotations

import pytest

from support import require_tool


def test_a_missing_tool_fails_the_test_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.fail.Exception, match=r"needs chromium or chromium-browser.*apt-get install chromium"):
        require_tool("chromium", "chromium-browser")


def test_a_present_tool_is_found() -> None:
    assert require_tool("git").endswith("git")
