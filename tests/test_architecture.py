"""The import rules that keep StillMotion embeddable: plugin → ui → engine, never back; Qt never in engine;
torch / diffusers / transformers only inside the diffusion modules that run in the worker, inside functions; no
import cycle between project modules; and no module so long that it must hold several concerns."""

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
#: Modules allowed to import the diffusion stack (lazily, inside functions): the ones that run in the worker.
#: The rest of engine/backends/diffusion/ (weights, plan, retime, protocol, backend, families) stays torch-free.
DIFFUSION_MODULES = tuple(f"engine/backends/diffusion/{name}.py"
                          for name in ("runtime", "worker", "ltx", "ltx2", "svd", "wan"))
#: A module longer than this usually holds several concerns; the ones listed in LONG_MODULES say why they may.
MAX_MODULE_LINES = 600
LONG_MODULES: dict[str, str] = {}


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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["stillmotion", *parts])


def import_graph() -> dict[str, set[str]]:
    """module → project modules it imports, built statically with ast over engine/, ui/ and plugin/.

    Every import counts, wherever it stands: module level, `if TYPE_CHECKING:`, and inside functions — a lazy
    import only delays a circle, it does not remove the two modules' dependence on each other. `from . import x`
    points at module x when x is one, else at the package; importing a submodule does not add an edge to its
    parent packages (their `__init__` runs first, but a package importing its own submodules is not a cycle).
    """
    files = {_module_name(f): f for package in PACKAGES for f in _files(package)}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package[: len(package) - (node.level - 1)]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                wanted = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in files:  # `import a.b.c` of a project module, or a name in it
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_import_cycle_detection_sees_lazy_and_relative_imports() -> None:
    """The checker itself: a function-local import closing a circle is one, a chain is not."""
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    graph = import_graph()
    # `from .worker import run_job` inside DiffusionBackend.render (function-local, relative) is an edge.
    assert "stillmotion.engine.backends.diffusion.worker" in graph["stillmotion.engine.backends.diffusion.backend"]
    assert "stillmotion.engine.errors" in graph["stillmotion.engine.backends.diffusion.worker"]  # `from ... import`


def test_no_import_cycles() -> None:
    cycles = import_cycles(import_graph())
    assert not cycles, f"modules importing each other (directly or round a circle): {cycles}"


def test_no_module_too_long_to_hold_one_concern() -> None:
    lengths = {f.relative_to(ROOT).as_posix(): len(f.read_text(encoding="utf-8").splitlines())
               for package in PACKAGES for f in _files(package)}
    too_long = {rel: n for rel, n in lengths.items() if n > MAX_MODULE_LINES and rel not in LONG_MODULES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them, or list why in LONG_MODULES): {too_long}"
    stale = [rel for rel in LONG_MODULES if lengths.get(rel, 0) <= MAX_MODULE_LINES]
    assert not stale, f"listed as long but no longer are (remove from LONG_MODULES): {stale}"
