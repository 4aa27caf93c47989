"""The React client's API types are generated from this app's OpenAPI document; they must
not drift. Regenerate both with `make frontend-types`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from flask import Flask

from app.api.openapi import document_text

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
GENERATOR = FRONTEND / "node_modules" / ".bin" / "openapi-typescript"
NPM = shutil.which("npm")
HINT = "the API changed: run `make frontend-types` and commit frontend/openapi.json and schema.d.ts"


def test_committed_document_is_the_apps(app: Flask) -> None:
    committed = (FRONTEND / "openapi.json").read_text(encoding="utf-8")
    assert committed == document_text(app), HINT


def test_committed_types_are_generated_from_the_apps_document(app: Flask, tmp_path: Path) -> None:
    if NPM is None or not GENERATOR.exists():
        pytest.skip("npm or frontend/node_modules is missing (npm ci); make test installs them")
    source = tmp_path / "openapi.json"
    source.write_text(document_text(app), encoding="utf-8")
    target = tmp_path / "schema.d.ts"
    subprocess.run(  # the generator's options live in one place: package.json's "types"
        [NPM, "run", "--silent", "types", "--", str(source), "-o", str(target)],
        cwd=FRONTEND,
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = (FRONTEND / "src" / "api" / "schema.d.ts").read_text(encoding="utf-8")
    assert committed == target.read_text(encoding="utf-8"), HINT
