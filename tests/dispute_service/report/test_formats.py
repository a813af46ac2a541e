"""The report's formats: a CSV that parses back to the same numbers, an SVG bar chart, and a table for a
terminal, each from the seed's two years."""

from __future__ import annotations

import csv
import importlib.util
import io
import xml.etree.ElementTree as ET
from dataclasses import replace

from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.report.formats import print_table, to_csv, to_svg
from dispute_service.transactions import annual_report
from states.policy import Policy
from tests.report_checks import assert_csv_matches, assert_svg_bars
from tests.seed import Ladder, seed_years


def test_csv_parses_back_to_the_same_numbers(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    seed_years(ladder)
    result = annual_report(sessions, policy, 2017)
    rows = list(csv.DictReader(io.StringIO(to_csv(result), newline="")))
    assert_csv_matches(rows, result.to_dict())


def test_svg_is_valid_xml_with_one_bar_per_stage_per_year(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    seed_years(ladder)
    result = annual_report(sessions, policy, 2017)
    assert_svg_bars(to_svg(result), result)


def test_the_table_shows_the_figures_and_the_sentences(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    seed_years(ladder)
    console = Console(file=io.StringIO(), width=140)
    print_table(annual_report(sessions, policy, 2017), console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Annual report 2017-18" in text
    assert "Head of Corporate Parenting" in text
    assert "increased this year to 18 for Looked After Children from 9 the previous year" in text


SVG = "{http://www.w3.org/2000/svg}"


def test_the_svg_has_a_title_and_a_description_that_state_the_figures_in_words(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    seed_years(ladder)
    result = annual_report(sessions, policy, 2017)
    root = ET.fromstring(to_svg(result))
    # A screen reader announces an SVG image by the elements its aria-labelledby names.
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "chart-title chart-desc"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert (title.get("id"), desc.get("id")) == ("chart-title", "chart-desc")
    assert title.text == "Disputes raised, by the highest stage reached: 2016-17 and 2017-18"
    text = desc.text or ""
    for label, cohort in (
        (result.previous_label, result.previous_year),
        (result.year.label, result.this_year),
    ):
        counts = result.highest_stage(cohort)
        said = ", ".join(f"{counts[s]} reached {result.stage_titles[s]}" for s in result.stage_ids)
        assert f"{label}: {said}" in text


def test_an_empty_year_draws_zero_height_bars_on_an_axis_from_zero(
    sessions: sessionmaker[Session], policy: Policy
) -> None:
    result = annual_report(sessions, policy, 2030)
    svg = to_svg(result)
    assert_svg_bars(svg, result)
    root = ET.fromstring(svg)
    ticks = [t.text for t in root.iterfind(f".//{SVG}g[@id='y-axis']/{SVG}text") if t.text != "Disputes"]
    assert ticks == ["0", "1"]


def test_stage_titles_from_the_policy_file_are_escaped_and_the_chart_is_the_same_every_time(
    ladder: Ladder, sessions: sessionmaker[Session], policy: Policy
) -> None:
    seed_years(ladder)
    result = annual_report(sessions, policy, 2017)
    hostile = replace(result, stage_titles={**result.stage_titles, "team_manager": 'Team <Manager> & "co"'})
    svg = to_svg(hostile)
    root = ET.fromstring(svg)  # still well-formed XML
    labels = [t.text for t in root.iterfind(f".//{SVG}g[@id='x-axis']/{SVG}text")]
    assert 'Team <Manager> & "co"' in labels
    assert "<Manager>" not in svg
    assert to_svg(hostile) == svg


def test_neither_matplotlib_nor_numpy_is_installed() -> None:
    # The chart is a template: matplotlib, with numpy, pillow and fonttools, was half the installed size,
    # took 3 seconds to import and 60 MiB of memory to draw one bar chart, under a process-wide lock.
    why = (
        "is installed again: the chart is a Jinja2 template, and matplotlib with numpy was half the "
        "installed size, 3 s of import time and 60 MiB of RSS; find what brings it in (pip show NAME, "
        "Required-by) and drop it"
    )
    assert importlib.util.find_spec("matplotlib") is None, f"matplotlib {why}"
    assert importlib.util.find_spec("numpy") is None, f"numpy {why}"
