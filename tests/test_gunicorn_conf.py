"""gunicorn.conf.py's worker hooks, run as gunicorn runs them."""

from __future__ import annotations

import gc
import os
import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[1] / "gunicorn.conf.py"


@pytest.fixture
def isolated() -> Iterator[None]:
    """The config file sets environment defaults (metrics dir, drain flag) when read:
    keep them from the apps later tests build, and thaw the collector afterwards."""
    saved = dict(os.environ)
    yield
    gc.unfreeze()
    os.environ.clear()
    os.environ.update(saved)


def test_a_started_worker_freezes_what_it_loaded_for_the_gc(isolated: None) -> None:
    """Full collections then skip the app's long-lived objects (about 0.5 ms a request)."""
    gc.unfreeze()
    hooks = runpy.run_path(str(CONF))
    hooks["post_worker_init"](None)
    assert gc.get_freeze_count() > 10_000
