"""Test-wide isolation: caches, data and settings go to a throwaway folder, never the user's home."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import pytest

_SANDBOX = Path(tempfile.mkdtemp(prefix="stillmotion-tests-"))
for _name, _sub in (("STILLMOTION_CACHE_DIR", "cache"), ("STILLMOTION_DATA_DIR", "data"),
                    ("XDG_CACHE_HOME", "xdg-cache"), ("XDG_DATA_HOME", "xdg-data"),
                    ("XDG_CONFIG_HOME", "xdg-config")):
    os.environ.setdefault(_name, str(_SANDBOX / _sub))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def ray_test_token() -> str:
    """One throwaway Ray token for the whole test session: Ray keeps the token a process loaded first, so a second
    local cluster started in the same process with another token could not authenticate to its own GCS."""
    return secrets.token_hex(32)
