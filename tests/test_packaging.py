"""The wheel `pip install .` builds must carry the templates, the widget and the migrations (both backends')."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_templates_widget_and_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), ROOT],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("clicktochat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.glob("templates/**/*"):
        if path.is_file():
            assert f"clicktochat/{path.relative_to(ROOT)}" in names
    for path in ROOT.glob("widget/**/*"):
        if path.is_file():
            assert f"clicktochat/{path.relative_to(ROOT)}" in names
    assert "clicktochat/migrations/001_initial.sql" in names
    assert "clicktochat/migrations_pg/011_schema.sql" in names
    assert any(name.endswith("entry_points.txt") for name in names)

    # Unpacked alone, the package finds its own templates (not the checkout's) and renders a page.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from clicktochat.app import asset_dir; import clicktochat;"
        "assert clicktochat.__file__.startswith(sys.argv[1]), clicktochat.__file__;"
        "print(asset_dir('templates'))"
    )
    found = subprocess.run([sys.executable, "-c", script, str(site)], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == str(site / "clicktochat" / "templates")
    assert (site / "clicktochat" / "templates" / "landing.html").is_file()
