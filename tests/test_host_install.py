"""`stillmotion install-host`: where each host's files go, --dry-run, atomic replacement, one-line errors, and the
installed entry files themselves (the Blender bootstrap linking the venv, or only the plugin package when
Blender's Python differs from the venv's)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from stillmotion.plugin import install


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # cwd away from the repo root: a stale stillmotion.egg-info there would hide entry-point commands
    return subprocess.run([sys.executable, "-m", "stillmotion.engine", "install-host", *args],
                          capture_output=True, text=True, cwd=cwd)


def test_dry_run_prints_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "addons"
    done = cli("blender", "--dry-run", "--target", str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"would write {target / 'stillmotion_vse' / '__init__.py'}" in done.stdout
    assert "nothing written" in done.stdout and not target.exists()


def test_blender_install_writes_addon_and_manifest(tmp_path: Path) -> None:
    target = tmp_path / "addons"
    for _ in range(2):  # a second install replaces the first
        done = cli("blender", "--target", str(target), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    folder = target / "stillmotion_vse"
    assert sorted(p.name for p in folder.iterdir()) == ["__init__.py", "blender_manifest.toml"]
    manifest = tomllib.loads((folder / "blender_manifest.toml").read_text())
    assert manifest["id"] == "stillmotion_vse" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0" and manifest["schema_version"] == "1.0.0"
    namespace: dict = {}
    exec(compile((folder / "__init__.py").read_text(), "addon", "exec"), namespace)  # noqa: S102
    assert namespace["bl_info"]["blender"] == (3, 0, 0)
    config = namespace["CONFIG"]
    assert config["python"] == sys.executable and config["python_version"] == list(sys.version_info[:2])
    assert Path(config["plugin_dir"], "blender", "operators.py").is_file()


def test_resolve_install_writes_the_menu_script(tmp_path: Path) -> None:
    done = cli("resolve", "--target", str(tmp_path / "Utility"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "Utility" / "StillMotion.py"
    text = script.read_text()
    compile(text, str(script), "exec")
    assert f"'python': {sys.executable!r}" in text and "Workspace > Scripts" in done.stdout


def test_default_folders_follow_the_host_and_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert install.blender_target((3, 4)) == tmp_path / "cfg" / "blender" / "3.4" / "scripts" / "addons"
    assert install.blender_target((4, 2)) == tmp_path / "cfg" / "blender" / "4.2" / "extensions" / "user_default"
    folder, files = install.plan("blender", blender_version="4.2")
    assert folder == install.blender_target((4, 2)) and files[0].path.parent.name == "stillmotion_vse"
    assert install.resolve_target() == tmp_path / ".local/share/DaVinciResolve/Fusion/Scripts/Utility"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert "Library/Application Support/Blackmagic Design" in install.resolve_target().as_posix()


@pytest.mark.parametrize("args, message", [
    (("blender", "--blender-version", "four"), "must look like"),
    (("resolve", "--python", "/nonexistent/python"), "does not exist"),
    (("maya",), "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = cli(*args, "--target", str(tmp_path / "t"), cwd=tmp_path) if args[0] == "maya" else cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_target_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = cli("resolve", "--target", str(blocker), cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1


def test_bootstrap_loads_only_the_plugin_when_python_differs(tmp_path: Path) -> None:
    """Blender with another Python: no venv on sys.path, yet the operators' modules import (renders still run
    in the venv's Python)."""
    target = tmp_path / "addons"
    assert cli("blender", "--target", str(target), cwd=tmp_path).returncode == 0
    code = (
        "import sys, runpy\n"
        f"ns = runpy.run_path({str(target / 'stillmotion_vse' / '__init__.py')!r})\n"
        "config = dict(ns['CONFIG'], python_version=[2, 7])\n"
        "print(ns['link_environment'](config))\n"
        "import stillmotion.plugin.runtime, stillmotion.plugin.blender.sequencer\n"
        "print(any('site-packages' in p for p in sys.path), 'opentimelineio' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["plugin-only", "False", "False"]
