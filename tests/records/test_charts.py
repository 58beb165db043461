"""The progress chart: an accessible server-side SVG with its numbers as a table."""

import re
from datetime import date

from django.utils import translation

from clinic.records.charts import Series, line_chart, series_from, wellness_chart

ENTRIES = [
    (date(2026, 3, 1), {"pain": 8, "energy": 3}),
    (date(2026, 3, 15), {"pain": 6, "energy": 5, "mood": 6}),
    (date(2026, 4, 5), {"pain": 3, "energy": 7, "mood": 8}),
]


def test_each_series_is_a_line_through_its_points():
    svg = str(wellness_chart(ENTRIES))
    lines = re.findall(r'<polyline points="([^"]+)"', svg)
    assert len(lines) == 3  # pain, energy, mood; sleep and stress were never scored
    pain = [tuple(map(float, p.split(","))) for p in lines[0].split()]
    assert len(pain) == 3
    xs = [x for x, _y in pain]
    assert xs == sorted(xs)  # oldest on the left
    ys = [y for _x, y in pain]
    assert ys[0] < ys[1] < ys[2]  # pain 8 → 6 → 3 goes down on screen (SVG y grows down)


def test_the_chart_is_labelled_for_people_who_cannot_see_it():
    with translation.override("pt-br"):
        svg = str(wellness_chart(ENTRIES))
    assert 'role="img"' in svg
    assert '<title id="wellness-chart-title">Escalas de bem-estar</title>' in svg
    assert "<desc" in svg and "01/03/2026" in svg
    assert "pontuação (0–10)" in svg  # the y axis' label
    assert ">Data<" in svg  # the x axis' label
    assert "<title>dor: 8 (01/03/2026)</title>" in svg  # each point says what it is


def test_the_axes_show_the_scale_and_the_dates():
    svg = str(wellness_chart(ENTRIES))
    y_ticks = re.findall(r'text-anchor="end">([^<]+)</text>', svg)
    assert y_ticks == ["0", "2", "4", "6", "8", "10"]
    assert "15/03/2026" in svg and "05/04/2026" in svg


def test_the_same_numbers_come_as_a_table():
    html = str(wellness_chart(ENTRIES))
    table = html[html.index("<table>") :]
    assert "<caption>" in table
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    assert len(rows) == 1 + 3  # header and one row per date
    assert '<th scope="row">01/03/2026</th><td>8</td><td>3</td><td>—</td>' in rows[1]


def test_series_are_told_apart_without_colour():
    svg = str(wellness_chart(ENTRIES))
    dashes = re.findall(r'<polyline[^>]*?(stroke-dasharray="[^"]+")?/>', svg)
    assert len(set(dashes)) == 3


def test_text_is_escaped():
    svg = str(
        line_chart(
            [Series("<script>alert(1)</script>", [(date(2026, 1, 1), 1.0)])],
            title='Peso & "IMC"',
        )
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "Peso &amp; &quot;IMC&quot;" in svg


def test_without_measurements_it_says_so():
    with translation.override("pt-br"):
        html = str(wellness_chart([]))
    assert "<svg" not in html
    assert "nenhuma medida" in html


def test_a_single_measurement_is_drawn_in_the_middle():
    svg = str(line_chart([Series("Peso", [(date(2026, 1, 1), 80.0)], "kg")], title="Peso"))
    assert re.search(r'<circle cx="340.0"', svg)
    assert "80 kg" in svg


def test_vitals_series_come_from_encounter_rows():
    series = series_from(
        [(date(2026, 1, 1), {"weight": "80.5"}), (date(2026, 2, 1), {"weight": 79})],
        ["weight", "glucose"],
        labels={"weight": "Peso"},
        units={"weight": "kg"},
    )
    assert len(series) == 1
    assert series[0].points == [(date(2026, 1, 1), 80.5), (date(2026, 2, 1), 79.0)]
