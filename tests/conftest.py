"""Shared fixtures. Tests may read ../shared directly (DEVELOPERS.md); METASIFT_SHARED overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("METASIFT_SHARED", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared folder is missing: {SHARED} (set METASIFT_SHARED)")
    return SHARED
