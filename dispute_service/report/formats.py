"""The annual report as CSV (for Excel), as an SVG chart (a Jinja2 template, the bars computed here) and as a
terminal table (rich).

Each renderer reads the same `AnnualReport`, so the formats can never disagree; the CSV holds exactly the
JSON's figures, one row per measure and breakdown.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dispute_service.report.annual import AnnualReport
from states.policy import OWN_LADDER_ID

if TYPE_CHECKING:
    import jinja2
    from rich.console import Console

CSV_HEADER = ("period", "period_start", "period_end", "measure", "breakdown", "value")
BAR_ID_PREFIX = "bar"


def csv_rows(report: AnnualReport) -> Iterator[tuple[str, str, str, str, str, str]]:
    """One row per measure and breakdown; a measure without breakdowns has an empty breakdown cell."""
    data = report.to_dict()
    period = data["period"]
    head = (period["label"], period["start"], period["end"])

    def value(v: Any) -> str:
        return "" if v is None else str(v)

    for measure, figure in data.items():
        if measure in ("period", "sentences"):
            continue
        if isinstance(figure, dict):
            for breakdown, v in figure.items():
                if isinstance(v, dict):
                    # by_ladder and by_organisation: four figures per ladder or organisation, each its own
                    # row so a spreadsheet can filter on them, "health.raised" (ids hold no dots).
                    for name, n in v.items():
                        yield (*head, measure, f"{breakdown}.{name}", value(n))
                else:
                    yield (*head, measure, breakdown, value(v))
        else:
            yield (*head, measure, "", value(figure))
    # Keyed by case type, then by kind of organisation for the partner sentences.
    for key, text in report.keyed_sentences():
        yield (*head, "sentence", key, text)


def to_csv(report: AnnualReport) -> str:
    # The csv module's CRLF line endings and minimal quoting are what Excel expects; every value is ASCII.
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return out.getvalue()


def bar_id(label: str, stage: str) -> str:
    return f"{BAR_ID_PREFIX}-{label}-{stage}"


# The GOV.UK palette's dark and light blue: distinct for colour-blind readers, and each bar is labelled.
_COLOURS = ("#5694ca", "#1d70b8")
_WIDTH, _HEIGHT = 900, 480
_LEFT, _RIGHT, _TOP, _BOTTOM = 110, 880, 60, 360


def _nice_step(largest: int, most_ticks: int = 6) -> int:
    """The smallest of 1, 2 or 5 times a power of ten that keeps the axis to `most_ticks` gridlines."""
    magnitude = 1
    while True:
        for step in (magnitude, 2 * magnitude, 5 * magnitude):
            if math.ceil(largest / step) <= most_ticks:
                return step
        magnitude *= 10


def chart(report: AnnualReport) -> dict[str, Any]:
    """The chart's geometry and words, computed here so the template only places them."""
    stages = list(report.stage_ids)
    years = [
        (report.previous_label, report.highest_stage(report.previous_year)),
        (report.year.label, report.highest_stage(report.this_year)),
    ]
    titles = [report.stage_titles.get(stage, stage) for stage in stages]
    largest = max([1, *(counts.get(stage, 0) for _, counts in years for stage in stages)])
    step = _nice_step(largest)
    top_value = step * math.ceil(largest / step)
    plot_height = _BOTTOM - _TOP
    group = (_RIGHT - _LEFT) / len(stages)
    bar_width = round(group * 0.38, 2)

    def y_of(value: int) -> float:
        return round(_BOTTOM - plot_height * value / top_value, 2)

    series = []
    for offset, ((label, counts), colour) in enumerate(zip(years, _COLOURS, strict=True)):
        bars = []
        for i, (stage, title) in enumerate(zip(stages, titles, strict=True)):
            count = counts.get(stage, 0)
            x = round(_LEFT + group * i + group / 2 - bar_width + offset * bar_width, 2)
            bars.append(
                {
                    "id": bar_id(label, stage),
                    "x": x,
                    "y": y_of(count),
                    "height": round(_BOTTOM - y_of(count), 2),
                    "count": count,
                    "stage_title": title,
                }
            )
        series.append({"label": label, "colour": colour, "bars": bars})
    # The bars are the council's own ladder. Disputes on partner ladders are said in words only, and only in
    # a year that has any, so the chart of a year without them is exactly as it always was.
    partners = {
        report.ladder_titles.get(ladder, ladder): figures.raised
        for ladder, figures in report.by_ladder.items()
        if ladder != OWN_LADDER_ID and figures.raised
    }
    whose = " on the council's own ladder" if partners else ""
    described = "; ".join(
        f"{label}: "
        + ", ".join(
            f"{counts.get(stage, 0)} reached {title}" for stage, title in zip(stages, titles, strict=True)
        )
        for label, counts in years
    )
    return {
        "width": _WIDTH,
        "height": _HEIGHT,
        "left": _LEFT,
        "right": _RIGHT,
        "top": _TOP,
        "bottom": _BOTTOM,
        "bar_width": bar_width,
        "title": (
            f"Disputes raised{whose}, by the highest stage reached: {report.previous_label} and "
            f"{report.year.label}"
        ),
        "desc": (
            f"A bar chart of the disputes raised in each year by the highest stage each reached. {described}."
            + (
                f" Not drawn: the disputes raised in {report.year.label} on partner ladders, "
                + ", ".join(f"{n} on {title}" for title, n in partners.items())
                + "."
                if partners
                else ""
            )
        ),
        "ticks": [{"value": v, "y": y_of(v)} for v in range(0, top_value + 1, step)],
        "labels": [
            {"x": round(_LEFT + group * i + group / 2, 2), "text": title} for i, title in enumerate(titles)
        ],
        "series": series,
    }


@functools.cache
def _template() -> jinja2.Template:
    # Imported for the first chart, not when the API starts: no other request needs Jinja2.
    import jinja2

    # Autoescaped: stage titles come from the council's policy file.
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("dispute_service.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template("chart.svg.j2")


def to_svg(report: AnnualReport) -> str:
    """This year against last by the highest stage reached: one bar per stage per year, each a `<rect>`
    with an id, and a `<title>` and `<desc>` that say the same in words for a screen reader."""
    return _template().render(c=chart(report))


def print_table(report: AnnualReport, console: Console) -> None:
    """The report in the terminal: the headline figures, the breakdowns, then the sentences."""
    # Imported here: only the CLI prints a table, and the API imports this module for its CSV and SVG.
    from rich.table import Table

    data = report.to_dict()
    label, previous = report.year.label, report.previous_label
    console.print(
        f"[bold]Annual report {label}[/bold] ({data['period']['start']} to {data['period']['end']}, "
        "as the disputes stood at the year's end)"
    )

    headline = Table(title="Headline figures", title_justify="left")
    headline.add_column("measure")
    headline.add_column("figure", justify="right")
    median = data["median_working_days_to_close"]
    for name, figure in (
        (f"disputes raised in {label}", data["raised"]["this_year"]),
        (f"disputes raised in {previous}", data["raised"]["previous_year"]),
        ("change", f"{data['raised']['change']:+d}"),
        ("escalations, automatic", data["escalations"]["automatic"]),
        ("escalations, manual", data["escalations"]["manual"]),
        ("responses on time", data["responses"]["on_time"]),
        ("responses late", data["responses"]["late"]),
        ("CAFCASS referrals", data["cafcass_referrals"]),
        ("withdrawn", data["withdrawn"]),
        ("open at the year's end", data["open_at_year_end"]),
        ("median working days from raise to close", "none closed" if median is None else median),
    ):
        headline.add_row(name, str(figure))
    console.print(headline)

    stages = Table(title="By stage", title_justify="left")
    stages.add_column("stage")
    stages.add_column(f"highest reached {previous}", justify="right")
    stages.add_column(f"highest reached {label}", justify="right")
    stages.add_column(f"resolved at {label}", justify="right")
    before = report.highest_stage(report.previous_year)
    for stage, n in data["highest_stage"].items():
        stages.add_row(
            report.stage_titles.get(stage, stage),
            str(before.get(stage, 0)),
            str(n),
            str(data["resolved_at_stage"].get(stage, 0)),
        )
    console.print(stages)

    for title, key in (("By case type", "by_case_type"), ("By concern category", "by_category")):
        table = Table(title=title, title_justify="left")
        table.add_column(key.removeprefix("by_").replace("_", " "))
        table.add_column("raised", justify="right")
        for name, n in data[key].items():
            table.add_row(name, str(n))
        console.print(table)

    for title, key, names in (
        ("By ladder", "by_ladder", report.ladder_titles),
        ("By organisation", "by_organisation", report.organisation_names),
    ):
        if not data[key]:
            continue
        table = Table(title=title, title_justify="left")
        table.add_column(key.removeprefix("by_"))
        for column in ("raised", "escalations", "resolved", "open"):
            table.add_column(column, justify="right")
        for name, figures in data[key].items():
            table.add_row(names.get(name, name), *(str(n) for n in figures.values()))
        console.print(table)

    for text in data["sentences"]:
        console.print(text)
