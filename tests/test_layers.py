"""The layer rules are enforced: import-linter fails when a module breaks one.

Each case copies the package, breaks one rule in the copy and runs `lint-imports`
on it with the project's contracts (pyproject.toml), as `make lint` does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the package that passes every contract."""
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "app", root / "app", ignore=shutil.ignore_patterns("__pycache__"))
    clean = _lint(root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    return root


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("web/ops.py", "from app.repositories.items import ItemRepository", "only door"),
        ("api/items.py", "import app.repositories.users", "only door"),
        ("services/overview.py", "import flask", "import no Flask"),
        ("repositories/users.py", "from flask import g", "import no Flask"),
        ("core/events.py", "from flask import current_app", "import no Flask"),
        ("jobs/__init__.py", "import app.web.items", "Jobs never reach the pages"),
    ],
)
def test_breaking_a_rule_fails_lint_imports(
    tree: Path, module: str, line: str, contract: str
) -> None:
    path = tree / "app" / module
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text(original + f"\n{line}  # noqa\n", encoding="utf-8")
        result = _lint(tree)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode == 1, result.stdout
    broken = [row for row in result.stdout.splitlines() if "BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout
