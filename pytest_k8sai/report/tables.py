"""Paper-shaped tables: one model, rendered as aligned text for the terminal and as Markdown
for the results directory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # units, sources, how to read it

    def text(self) -> list[str]:
        widths = [
            max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
            for i, h in enumerate(self.headers)
        ]

        def line(cells: list[str]) -> str:
            first, *rest = cells
            return "  ".join(
                [first.ljust(widths[0])]
                + [c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)]
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return [self.title, line(self.headers), rule, *(line(r) for r in self.rows), *self.notes]

    def markdown(self) -> str:
        out = [
            f"### {self.title}",
            "",
            "| " + " | ".join(self.headers) + " |",
            "|" + "---|" * len(self.headers),
        ]
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"


class TableLog:
    """Tables of this session; rewritten to <results>/tables.md each time one is added, so a
    crash keeps what was reported."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.tables: list[Table] = []
        # Called with all tables after each add (the results file keeps them too).
        self.listeners: list[Callable[[list[Table]], None]] = []

    def add(self, table: Table) -> None:
        self.tables.append(table)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("\n".join(t.markdown() for t in self.tables))
        for listener in self.listeners:
            listener(self.tables)
