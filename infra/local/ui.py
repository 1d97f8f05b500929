"""Output of the local commands: a live spinner per step on a terminal, plain lines otherwise, or nothing
but the final JSON document with `--json`. Every step is also kept for that document."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Step:
    """One step of a command: what it did and how long it took."""

    title: str
    result: str = ""
    ok: bool = True
    seconds: float = 0.0

    def done(self, result: str) -> None:
        """Say what the step did ('started', 'nothing to change', a URL...)."""
        self.result = result


@dataclass
class Reporter:
    """Shows progress and collects the steps."""

    mode: str = "plain"  # "rich" (a terminal), "plain" or "quiet" (--json)
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    steps: list[Step] = field(default_factory=list)

    @classmethod
    def for_args(cls, json_output: bool) -> Reporter:
        """Quiet for --json, a spinner on a terminal, plain lines otherwise."""
        if json_output:
            return cls("quiet")
        return cls("rich" if sys.stderr.isatty() else "plain")

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[Step]:
        """Run one step under a spinner; prints its result (or failure) when it ends."""
        step = Step(title)
        self.steps.append(step)
        started = time.monotonic()
        try:
            if self.mode == "rich":
                from rich.console import Console

                with Console(file=self.stream).status(f"{title}..."):
                    yield step
            else:
                if self.mode == "plain":
                    print(f"... {title}", file=self.stream, flush=True)
                yield step
        except BaseException:
            step.ok = False
            step.seconds = time.monotonic() - started
            self._line("✗", step)
            raise
        step.seconds = time.monotonic() - started
        self._line("✓", step)

    def _line(self, mark: str, step: Step) -> None:
        if self.mode == "quiet":
            return
        detail = f": {step.result}" if step.result else ""
        text = f"{mark} {step.title}{detail} ({step.seconds:.1f}s)"
        if self.mode == "rich":
            from rich.console import Console
            from rich.markup import escape

            color = "green" if mark == "✓" else "red"
            Console(file=self.stream).print(f"[{color}]{mark}[/{color}] {escape(text[2:])}")
        else:
            print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A line of information (not a step)."""
        if self.mode != "quiet":
            print(text, file=self.stream, flush=True)

    def as_json(self) -> list[dict[str, Any]]:
        """The steps, for --json."""
        return [{"step": s.title, "result": s.result, "ok": s.ok, "seconds": round(s.seconds, 3)} for s in self.steps]


def table(title: str, columns: list[str], rows: list[list[str]], stream: TextIO | None = None) -> None:
    """A summary table: rich on a terminal, aligned plain text otherwise."""
    stream = stream or sys.stdout
    if stream.isatty():
        from rich.console import Console
        from rich.table import Table

        t = Table(title=title)
        for column in columns:
            t.add_column(column)
        for row in rows:
            t.add_row(*row)
        Console(file=stream).print(t)
        return
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    print(title, file=stream)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=stream)
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=stream)
