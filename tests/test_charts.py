"""Server-drawn SVG charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from clicktochat.charts import HEIGHT, Series, line_chart, nice_step

NS = "{http://www.w3.org/2000/svg}"


def test_round_steps() -> None:
    assert [nice_step(n) for n in (0, 3, 4, 7, 10, 37, 95, 1234, 99_999)] == [1, 1, 1, 2, 5, 10, 50, 500, 50_000]


def test_a_line_per_series_a_point_per_label_and_names_escaped() -> None:
    labels = ["2026-11-01", "2026-11-02", "2026-11-03"]
    svg = line_chart(labels, [Series("clicks", [0, 10, 5]), Series("<b>uniques</b>", [0, 4, 5])], "A & B")
    root = ET.fromstring(str(svg))  # well-formed XML: names are escaped
    lines = root.findall(f"{NS}polyline")
    assert len(lines) == 2 and len(root.findall(f"{NS}circle")) == 6
    assert root.find(f"{NS}title").text == "A & B"  # type: ignore[union-attr]
    first = [tuple(map(float, p.split(","))) for p in lines[0].get("points", "").split()]
    assert first[0][1] > first[2][1] > first[1][1]  # 0 at the bottom, 10 at the top
    assert first[1][1] >= 0 and first[0][1] <= HEIGHT
    titles = [c.find(f"{NS}title").text for c in root.findall(f"{NS}circle")]  # type: ignore[union-attr]
    assert "2026-11-02: 10 clicks" in titles and "2026-11-02: 4 <b>uniques</b>" in titles
    assert "style=" not in str(svg)  # the dashboard's CSP allows no inline styles


def test_empty_and_single_point_charts_draw() -> None:
    for labels, values in (([], []), (["2026-11-01"], [3])):
        root = ET.fromstring(str(line_chart(labels, [Series("clicks", values)], "t")))
        assert len(root.findall(f"{NS}circle")) == len(values)
