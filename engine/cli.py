"""`stillmotion` command line: one subcommand per module in `stillmotion.engine.commands`, plus commands other
packages (the panel, host installers) contribute through the `stillmotion.commands` entry-point group.

Every user-facing failure becomes one line on stderr and exit code 2; nothing here prints a traceback unless
STILLMOTION_DEBUG=1.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from . import __version__, commands
from .errors import StillMotionError

PROG = "stillmotion"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command_modules(only: str | None = None) -> list[ModuleType]:
    """Built-in commands first (in module order), then entry-point commands from ui / plugin.

    `only`: the name of a built-in command (its module is named after it): just that module is imported, since
    importing every command pulls in OpenTimelineIO, the job store and the contact sheets (~0.3 s of a render's
    start-up) for a parser that will run one of them.
    """
    found: list[ModuleType] = []
    names = sorted(info.name for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_"))
    if only is not None and only in names:
        return [importlib.import_module(f"{commands.__name__}.{only}")]
    for name in names:
        found.append(importlib.import_module(f"{commands.__name__}.{name}"))
    from importlib.metadata import entry_points  # ~50 ms of start-up that a built-in command never needs

    for ep in sorted(entry_points(group="stillmotion.commands"), key=lambda e: e.name):
        try:
            found.append(ep.load())
        except ImportError as exc:  # an optional extra (PySide6) may be missing
            found.append(_unavailable(ep.name, exc))
    return found


def _unavailable(name: str, exc: ImportError) -> ModuleType:
    """A command whose package is not installed: listed in --help, fails with one line when run."""
    module = ModuleType(name)
    module.NAME = name  # type: ignore[attr-defined]
    module.HELP = f"(unavailable: {exc.name or exc} is not installed)"  # type: ignore[attr-defined]

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("rest", nargs=argparse.REMAINDER)

    def run(args: argparse.Namespace) -> int:
        raise StillMotionError(f"'{name}' needs {exc.name or exc}, which is not installed")

    module.add_arguments = add_arguments  # type: ignore[attr-defined]
    module.run = run  # type: ignore[attr-defined]
    return module


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or (`only` = a built-in command's name) one that knows just that subcommand."""
    parser = OneLineParser(
        prog=PROG,
        description="Animate stills for exactly their clip's duration, with motion that lands on the music.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module in _command_modules(only):
        cmd = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def _chosen_command(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` names, if it names one before any top-level option (`stillmotion render ...`)."""
    return argv[0] if argv and not argv[0].startswith("-") else None


#: OpenBLAS starts worker threads when numpy loads and again when OpenCV loads (each bundles its own copy), and
#: they spin (sched_yield) for a while before sleeping: ~0.1 s of CPU per process on two cores, taken from the
#: start-up and the encoder. Nothing a command runs uses BLAS (`reproducible.matmul` replaces it, for
#: determinism), so a process that is the command keeps OpenBLAS to the calling thread. A user's own setting wins;
#: child processes (job workers, the diffusion worker) inherit it, and torch's threads are not OpenBLAS's.
_OPENBLAS_THREADS = "1"

#: Commands that render frames: their one-time OpenCV set-up starts on another core while the command imports.
_RENDERING = {"render", "timeline", "demo", "regenerate"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; `argv` None means this process is the command (the console script, `python -m`)."""
    whole_process = argv is None
    if whole_process:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", _OPENBLAS_THREADS)  # before anything imports numpy or cv2
        gc.disable()  # the imports below allocate ~36 000 long-lived objects; collecting among them finds nothing
    command = _chosen_command(sys.argv[1:] if argv is None else list(argv))
    if command in _RENDERING:
        from . import warmup

        warmup.start()
    try:
        parser = build_parser(command)
    finally:
        if whole_process:
            # Modules, classes and functions live until exit: frozen, no collection (during the render or at
            # interpreter shutdown) walks them again. ~0.1 s of a 1-frame render's CPU (docs/procedural.md).
            gc.freeze()
            gc.enable()
    try:
        args = parser.parse_args(argv)
    except BrokenPipeError:  # `stillmotion --help | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(args) or 0)
    except StillMotionError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: cancelled", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `stillmotion ... | head`: the reader left; not an error worth a message
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # a bug, not bad input: still one line, with a way to see more
        if os.environ.get("STILLMOTION_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (set STILLMOTION_DEBUG=1 for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
