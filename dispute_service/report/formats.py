"""The annual report as CSV (for Excel), as an SVG chart (matplotlib, Agg) and as a terminal table (rich).

Each renderer reads the same `AnnualReport`, so the formats can never disagree; the CSV holds exactly the
JSON's figures, one row per measure and breakdown.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

from dispute_service.report.annual import AnnualReport

CSV_HEADER = ("period", "period_start", "period_end", "measure", "breakdown", "value")
BAR_ID_PREFIX = "bar"
# matplotlib's settings are global to the process; request threads draw one chart at a time.
_drawing = threading.Lock()


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
                yield (*head, measure, breakdown, value(v))
        else:
            yield (*head, measure, "", value(figure))
    for case_type, text in zip(data["by_case_type"], data["sentences"], strict=True):
        yield (*head, "sentence", case_type, text)


def to_csv(report: AnnualReport) -> str:
    # The csv module's CRLF line endings and minimal quoting are what Excel expects; every value is ASCII.
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return out.getvalue()


def bar_id(label: str, stage: str) -> str:
    return f"{BAR_ID_PREFIX}-{label}-{stage}"


def to_svg(report: AnnualReport) -> str:
    """This year against last by the highest stage reached: one bar per stage per year, each with an id."""
    # Imported here: matplotlib takes a noticeable time to import, and only this format needs it.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    stages = list(report.highest_stage(report.this_year))
    years = [
        (report.previous_label, report.highest_stage(report.previous_year), "#9db4c0"),
        (report.year.label, report.highest_stage(report.this_year), "#1d4e89"),
    ]
    width = 0.4
    # A fixed salt and no date: the same report gives the same SVG, byte for byte.
    with _drawing, matplotlib.rc_context({"svg.hashsalt": "dispute-service", "svg.fonttype": "none"}):
        figure = Figure(figsize=(9, 4.8), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for offset, (label, counts, colour) in zip((-width / 2, width / 2), years, strict=True):
            bars = axes.bar(
                [i + offset for i in range(len(stages))],
                [counts.get(stage, 0) for stage in stages],
                width,
                label=label,
                color=colour,
            )
            for stage, bar in zip(stages, bars, strict=True):
                bar.set_gid(bar_id(label, stage))
            axes.bar_label(bars, padding=2, fontsize=8)
        axes.set_xticks(
            range(len(stages)),
            [report.stage_titles.get(stage, stage) for stage in stages],
            rotation=20,
            ha="right",
            fontsize=8,
        )
        axes.set_ylabel("Disputes")
        axes.set_title(
            f"Disputes raised, by the highest stage reached: {report.previous_label} and {report.year.label}"
        )
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(frameon=False)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def print_table(report: AnnualReport, console: Console) -> None:
    """The report in the terminal: the headline figures, the breakdowns, then the sentences."""
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

    for text in data["sentences"]:
        console.print(text)
