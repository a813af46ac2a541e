"""Checks shared by the report's tests: the CSV and the SVG hold what the report holds, and what an import
wrote."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispute_service.models import AuditEntry, AuditText, Dispute, StageEntry
from dispute_service.report.annual import AnnualReport
from states.vocabulary import CASE_TYPES
from tests.factories import STAGES

NONE_AT = dict.fromkeys(STAGES, 0)
SVG_NS = "{http://www.w3.org/2000/svg}"


def assert_csv_matches(rows: list[dict[str, str]], data: dict[str, Any]) -> None:
    """Every figure of the JSON is in the CSV exactly once, with ISO dates on every row."""
    assert rows, "a header and rows"
    assert list(rows[0]) == ["period", "period_start", "period_end", "measure", "breakdown", "value"]
    for row in rows:
        assert (row["period"], row["period_start"], row["period_end"]) == (
            data["period"]["label"],
            data["period"]["start"],
            data["period"]["end"],
        )
        assert date.fromisoformat(row["period_start"]) < date.fromisoformat(row["period_end"])
    figures: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row["measure"], row["breakdown"])
        assert key not in figures, f"{key} twice"
        figures[key] = row["value"]
    expected: dict[tuple[str, str], str] = {}
    for measure, figure in data.items():
        if measure in ("period", "sentences"):
            continue
        if isinstance(figure, dict):
            for k, v in figure.items():
                if isinstance(v, dict):  # by_ladder, by_organisation: a row per figure, "own.raised"
                    expected.update({(measure, f"{k}.{name}"): str(n) for name, n in v.items()})
                else:
                    expected[(measure, k)] = str(v)
        else:
            expected[(measure, "")] = "" if figure is None else str(figure)
    # One sentence per case type, then one per kind of organisation raised with in the year.
    sentences = iter(data["sentences"])
    for case_type in CASE_TYPES:
        expected[("sentence", case_type)] = next(sentences)
    kinds = {"partner agencies": "partner", "other local authorities": "other_authority"}
    for text in sentences:
        kind = next(k for words, k in kinds.items() if f" raised with {words} (" in text)
        expected[("sentence", kind)] = text
    assert figures == expected
    numbers = {k: v for k, v in figures.items() if k[0] not in ("sentence", "median_working_days_to_close")}
    assert all(v.lstrip("-").isdigit() for v in numbers.values())


def assert_svg_bars(svg: str, result: AnnualReport) -> None:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    bars = {el.get("id", ""): el for el in root.iter() if el.get("id", "").startswith("bar-")}
    years = {
        result.previous_label: result.highest_stage(result.previous_year),
        result.year.label: result.highest_stage(result.this_year),
    }
    assert set(bars) == {f"bar-{label}-{stage}" for label in years for stage in STAGES}
    # Each bar is a rectangle as tall as its count, standing on one baseline: the heights share one scale.
    heights = {}
    bottoms = set()
    for label, counts in years.items():
        for stage in STAGES:
            bar = bars[f"bar-{label}-{stage}"]
            assert bar.tag == f"{SVG_NS}rect"
            height = float(bar.get("height", "nan"))
            heights[(label, stage)] = (height, counts[stage])
            bottoms.add(round(float(bar.get("y", "nan")) + height, 1))
    # One scale, read off the tallest bar, to within the rounding of the chart's coordinates (each to a
    # hundredth of a unit, so a bar's height is off by 0.01 at most, and the scale by less).
    tallest_height, tallest_count = max(heights.values(), key=lambda hn: hn[1])
    if tallest_count:
        scale = tallest_height / tallest_count
        assert scale > 0
        for key, (height, count) in heights.items():
            assert abs(height - count * scale) <= 0.02, (
                f"{key}: {height} tall for {count} at {scale} a dispute"
            )
    assert all(h == 0 for h, n in heights.values() if n == 0)
    assert len(bottoms) == 1


def counts(sessions: sessionmaker[Session]) -> tuple[int, int, int, int]:
    """Disputes, audit entries, stage entries and texts: all zero after an import that loaded nothing."""
    with sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(Dispute)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
            session.scalar(select(func.count()).select_from(StageEntry)) or 0,
            session.scalar(select(func.count()).select_from(AuditText)) or 0,
        )
