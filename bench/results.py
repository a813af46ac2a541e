"""The figures a bench prints, collected so `make bench` can show every bench's in one table.

Each bench adds its figures here as it goes; `--results FILE` also appends them to FILE as JSON lines,
which `bench/all.py` reads back once every bench has run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    bench: str
    database: str
    name: str
    value: float
    unit: str
    target: float | None
    higher_is_better: bool

    @property
    def verdict(self) -> str:
        if self.target is None or math.isnan(self.value):
            return ""
        met = self.value >= self.target if self.higher_is_better else self.value <= self.target
        return "met" if met else "MISSED"

    def row(self) -> str:
        value = f"{self.value:,.2f}" if abs(self.value) < 10 else f"{self.value:,.0f}"
        target = "" if self.target is None else ("≥ " if self.higher_is_better else "≤ ") + f"{self.target:g}"
        cells = (self.bench, self.database, self.name, f"{value} {self.unit}", target, self.verdict)
        return "| " + " | ".join(cells) + " |"


class Results:
    def __init__(self, bench: str, path: Path | None = None) -> None:
        self.bench = bench
        self.path = path
        self.figures: list[Figure] = []

    def add(
        self,
        database: str,
        name: str,
        value: float,
        unit: str,
        *,
        target: float | None = None,
        higher_is_better: bool = True,
    ) -> None:
        figure = Figure(self.bench, database, name, float(value), unit, target, higher_is_better)
        self.figures.append(figure)
        if self.path is not None:
            with self.path.open("a") as out:
                out.write(json.dumps(asdict(figure)) + "\n")

    def print_table(self) -> None:
        print_table(self.figures)


def read(path: Path) -> list[Figure]:
    return [Figure(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def print_table(figures: list[Figure]) -> None:
    print()
    print("| bench | database | figure | value | target | |")
    print("| --- | --- | --- | --- | --- | --- |")
    for figure in figures:
        print(figure.row())
