"""Starting child processes safely from any host.

The 'spawn' start method re-imports the parent's `__main__` in the child. A user's script without an
`if __name__ == "__main__":` guard, a host's embedded script or a test runner would then run again in every
worker (and fail there with an unhelpful exit code), so children are started while `__main__` is an empty module:
their targets live in importable StillMotion modules and need nothing from the parent's script.
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator


@contextlib.contextmanager
def main_module_hidden() -> Iterator[None]:
    """Within this block, a spawned child does not re-run the parent's __main__."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
