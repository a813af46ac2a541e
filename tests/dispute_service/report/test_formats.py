"""The report's formats: a CSV that parses back to the same numbers, an SVG bar chart, and a table for a
terminal, each from the seed's two years."""

from __future__ import annotations

import csv
import io

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
