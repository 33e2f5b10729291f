"""The import rules that keep StillMotion embeddable: plugin → ui → engine, never back; Qt never in engine;
torch / diffusers / transformers only inside the diffusion backends, and never at module level elsewhere."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"engine": ROOT / "engine", "ui": ROOT / "ui", "plugin": ROOT / "plugin"}
HEAVY = {"torch", "diffusers", "transformers", "accelerate"}
QT = {"PySide6", "PyQt5", "PyQt6", "PySide2", "shiboken6"}
HOST = {"bpy", "DaVinciResolveScript", "fusionscript"}
#: Modules allowed to import the diffusion stack (lazily, inside functions or their worker process).
DIFFUSION_MODULES = ("engine/backends/diffusion/",)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(top-level module or stillmotion sub-package, at module level?) for every import in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module_level = {id(node) for node in tree.body}
    for node in tree.body:  # imports under `if TYPE_CHECKING:` / try at module level count as module level
        if isinstance(node, (ast.If, ast.Try)):
            module_level.update(id(n) for n in ast.walk(node))
    found: list[tuple[str, bool]] = []
    package_parts = path.relative_to(ROOT).parts
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package path
                base = list(package_parts[:-1])
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                names = [".".join(["stillmotion", *base, *(node.module.split(".") if node.module else [])])]
            elif node.module:
                names = [node.module]
        for name in names:
            found.append((name, id(node) in module_level))
    return found


def _files(package: str) -> list[Path]:
    return sorted(PACKAGES[package].rglob("*.py"))


def _stillmotion_target(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] == "stillmotion" and len(parts) > 1:
        return parts[1]
    if parts[0] in PACKAGES:  # bare `engine` / `ui` imports are forbidden outright
        return "bare:" + parts[0]
    return None


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_bare_package_imports(package: str) -> None:
    offenders = [(f.relative_to(ROOT), n) for f in _files(package) for n, _ in _imports(f)
                 if (_stillmotion_target(n) or "").startswith("bare:")]
    assert not offenders, f"import through stillmotion.*, not bare names: {offenders}"


def test_engine_imports_neither_ui_nor_plugin_nor_qt() -> None:
    offenders = []
    for f in _files("engine"):
        for name, _ in _imports(f):
            if _stillmotion_target(name) in ("ui", "plugin") or name.split(".")[0] in QT | HOST:
                offenders.append((str(f.relative_to(ROOT)), name))
    assert not offenders


def test_ui_does_not_import_plugin_or_hosts_or_torch() -> None:
    offenders = []
    for f in _files("ui"):
        for name, _ in _imports(f):
            if _stillmotion_target(name) == "plugin" or name.split(".")[0] in HOST | HEAVY:
                offenders.append((str(f.relative_to(ROOT)), name))
    assert not offenders


def test_host_modules_only_in_plugin() -> None:
    offenders = [(str(f.relative_to(ROOT)), n) for pkg in ("engine", "ui") for f in _files(pkg)
                 for n, _ in _imports(f) if n.split(".")[0] in HOST]
    assert not offenders


def test_heavy_stack_only_lazily_in_diffusion_backends() -> None:
    offenders = []
    for pkg in PACKAGES:
        for f in _files(pkg):
            rel = f.relative_to(ROOT).as_posix()
            allowed = rel.startswith(DIFFUSION_MODULES)
            for name, at_module_level in _imports(f):
                if name.split(".")[0] in HEAVY and (not allowed or at_module_level):
                    offenders.append((rel, name, "module level" if at_module_level else "function"))
    assert not offenders, f"torch & co. only inside diffusion backends, inside functions: {offenders}"


def test_weight_free_path_imports_without_torch_qt_or_hosts() -> None:
    """Import the CLI and run a render's import graph in a fresh interpreter: nothing heavy gets loaded."""
    code = (
        "import sys\n"
        "import stillmotion.engine.cli, stillmotion.engine.render, stillmotion.engine.backends.procedural\n"
        "stillmotion.engine.cli.build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(HEAVY | QT | HOST)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"loaded on the weight-free path: {out.stdout.strip()}"
