"""docs/architecture.md is the map a newcomer reads first: every module of the package is on it,
and everything on it exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()
PACKAGE = ROOT / "src" / "clicktochat"


def test_every_module_is_on_the_map() -> None:
    modules = {path.name for path in PACKAGE.glob("*.py") if not path.name.startswith("__")}
    missing = sorted(name for name in modules if f"`{name}`" not in ARCHITECTURE)
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_every_module_on_the_map_exists() -> None:
    named = set(re.findall(r"`([a-z_]+\.py)`", ARCHITECTURE))
    gone = sorted(name for name in named if not (PACKAGE / name).exists())
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
