"""Packaging: every package folder is listed in pyproject (or a wheel would silently miss it), and the console
script answers --help for every subcommand."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from stillmotion.engine.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = set()
    for top in ("engine", "ui", "plugin"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            on_disk.add(".".join(["stillmotion", *rel]))
    assert on_disk == listed


def test_top_level_layout() -> None:
    ignored = {"build", "dist", "stillmotion-demo"}  # build output and the demo's results (gitignored)
    names = {p.name for p in ROOT.iterdir()
             if not p.name.startswith(".") and not p.name.endswith(".egg-info") and p.name not in ignored}
    required = {"plugin", "engine", "ui", "tests", "resources", "pyproject.toml", "README.md"}
    assert required <= names
    assert names - required <= {"bench", "docs", "LICENSE"}, f"unexpected top-level entries: {names - required}"


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_help_lists_every_subcommand() -> None:
    out = subprocess.run([sys.executable, "-m", "stillmotion.engine", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in _subcommands():
        assert name in out.stdout


@pytest.mark.parametrize("name", _subcommands())
def test_subcommand_help_is_complete(name: str) -> None:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    sub = action.choices[name]
    text = sub.format_help()
    assert sub.description and len(sub.description) > 20
    for act in sub._actions:
        if act.dest != "help":
            assert act.help, f"{name}: option {act.option_strings or act.dest} has no help text"
    assert "usage:" in text

