"""Every runtime dependency declared in pyproject.toml is imported in src/, and everything src/
imports (outside the standard library) is declared: no dead weight, nothing that works only
because another package happened to pull it in."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

IMPORT_NAMES = {
    "ua-parser": "ua_parser",
    "argon2-cffi": "argon2",
    "pillow": "PIL",
    "pysimdjson": "simdjson",
}
"""Distributions whose import name is not their name with dashes as underscores."""

NOT_IMPORTED = {
    # zoneinfo (standard library) reads the IANA zones from it at run time on systems without
    # /usr/share/zoneinfo (Windows, slim containers); nothing imports it by name.
    "tzdata",
    # Starlette's request.form() imports it to parse the dashboard's forms; we never do.
    "python-multipart",
}


RUNTIME_EXTRAS = ("postgresql",)
"""Optional dependencies src/ imports lazily, where they are used (`--db postgresql://...`)."""


def declared() -> set[str]:
    """The distribution names of [project].dependencies and of RUNTIME_EXTRAS, lower-cased, without
    extras or versions."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    extras = [spec for extra in RUNTIME_EXTRAS for spec in project["optional-dependencies"][extra]]
    for spec in project["dependencies"] + extras:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec)
        assert match, spec
        names.add(re.sub(r"[._]", "-", match.group(0).lower()))
    return names


def imported() -> set[str]:
    """The top-level modules src/ imports, less the standard library and our own package."""
    found: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"clicktochat", "__future__"}


def import_name(distribution: str) -> str:
    return IMPORT_NAMES.get(distribution, distribution.replace("-", "_"))


def test_every_declared_dependency_is_imported() -> None:
    modules = imported()
    unused = {d for d in declared() - NOT_IMPORTED if import_name(d) not in modules}
    assert not unused, f"declared in pyproject.toml but never imported in src/: {sorted(unused)}"


def test_every_import_is_declared() -> None:
    undeclared = imported() - {import_name(d) for d in declared()}
    assert not undeclared, f"imported in src/ but not declared in pyproject.toml: {sorted(undeclared)}"


def test_the_allowed_exceptions_are_still_declared() -> None:
    assert NOT_IMPORTED <= declared()
