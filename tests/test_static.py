"""The vendored htmx is the pinned file, with its license and a matching integrity hash."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "static" / "vendor" / "htmx"


def test_vendored_htmx_matches_its_pinned_integrity() -> None:
    meta = json.loads((VENDOR / "VERSION.json").read_text())
    assert meta["version"].startswith("4.")
    digest = hashlib.sha384((VENDOR / meta["file"]).read_bytes()).digest()
    assert meta["integrity"] == "sha384-" + base64.b64encode(digest).decode()
    assert "Zero-Clause BSD" in (VENDOR / "LICENSE").read_text()
